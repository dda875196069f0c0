/** A FIFO async mutex: `run(fn)` starts `fn` once every earlier `fn` has settled. */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve()

  run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.tail.then(fn)
    this.tail = p.then(
      () => undefined,
      () => undefined,
    )
    return p
  }
}

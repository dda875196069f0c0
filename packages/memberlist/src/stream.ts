import type net from 'node:net'
import { TimeoutError, UnavailableError } from '@cnm/types'
import type { Keyring } from './types.js'
import { readStreamMessage } from './wire/index.js'
import type { Message } from './wire/index.js'

/** The peer closed the connection before sending anything (Go's io.EOF: no error reply). */
export class StreamEofError extends UnavailableError {
  constructor() {
    super('stream closed before a message arrived', { code: 'ERR_MEMBERLIST_EOF' })
  }
}

/**
 * Reads exactly one stream message (§6) from `socket` before `deadline` (epoch ms). Bytes are gathered
 * in a buffer that doubles as it grows, so a message of tens of MB costs linear copying. Rejects with
 * the wire decoder's error for malformed input, TimeoutError at the deadline, StreamEofError when the
 * peer closes without sending anything, UnavailableError when it closes mid-message.
 */
export function readOneMessage(
  socket: net.Socket,
  keyring: Keyring,
  deadline: number,
  maxBytes: number,
): Promise<Message> {
  return new Promise<Message>((resolve, reject) => {
    let buf = Buffer.allocUnsafe(16 * 1024)
    let len = 0
    let settled = false
    const timer = setTimeout(
      () => finish(new TimeoutError('stream read deadline exceeded', { code: 'ERR_MEMBERLIST_TIMEOUT' })),
      Math.max(0, deadline - Date.now()),
    )
    timer.unref()
    const finish = (err: unknown, msg?: Message): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.off('data', onData)
      socket.off('end', onEnd)
      socket.off('close', onEnd)
      socket.off('error', onError)
      socket.pause()
      if (msg !== undefined) resolve(msg)
      else reject(err)
    }
    const onData = (chunk: Buffer): void => {
      if (len + chunk.length > buf.length) {
        const next = Buffer.allocUnsafe(Math.max(buf.length * 2, len + chunk.length))
        buf.copy(next, 0, 0, len)
        buf = next
      }
      chunk.copy(buf, len)
      len += chunk.length
      let res: { message: Message; consumed: number } | undefined
      try {
        res = readStreamMessage(buf.subarray(0, len), { keyring, maxBytes })
      } catch (err) {
        finish(err)
        return
      }
      if (res !== undefined) finish(undefined, res.message)
    }
    const onEnd = (): void =>
      finish(
        len === 0
          ? new StreamEofError()
          : new UnavailableError('stream ended in the middle of a message', { code: 'ERR_MEMBERLIST_EOF' }),
      )
    const onError = (err: Error): void =>
      finish(new UnavailableError(`stream error: ${err.message}`, { code: 'ERR_MEMBERLIST_STREAM', cause: err }))
    socket.on('data', onData)
    socket.once('end', onEnd)
    socket.once('close', onEnd)
    socket.once('error', onError)
    socket.resume()
  })
}

/** Writes `buf` and resolves once the kernel took it (or rejects on a socket error / deadline). */
export function writeAll(socket: net.Socket, buf: Uint8Array, deadline: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let settled = false
    const timer = setTimeout(
      () => done(new TimeoutError('stream write deadline exceeded', { code: 'ERR_MEMBERLIST_TIMEOUT' })),
      Math.max(0, deadline - Date.now()),
    )
    timer.unref()
    const onClose = (): void =>
      done(new UnavailableError('stream closed while writing', { code: 'ERR_MEMBERLIST_STREAM' }))
    const done = (err?: Error): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.off('close', onClose)
      if (err === undefined) resolve()
      else reject(err)
    }
    socket.once('close', onClose)
    socket.write(buf, (err) => {
      if (err !== null && err !== undefined)
        done(new UnavailableError(`stream write failed: ${err.message}`, { code: 'ERR_MEMBERLIST_STREAM', cause: err }))
      else done()
    })
  })
}

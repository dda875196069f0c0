// Minimal typings for the parts of dns-packet 5.6.1 the tests use (the package ships none).
declare module 'dns-packet' {
  export interface Question {
    type: string
    name: string
    class?: string
  }
  export interface Answer {
    type: string
    name: string
    ttl?: number
    class?: string
    flush?: boolean
    data?: unknown
    udpPayloadSize?: number
    extendedRcode?: number
    ednsVersion?: number
    flags?: number
    options?: unknown[]
  }
  export interface Packet {
    type?: 'query' | 'response'
    id?: number
    flags?: number
    rcode?: string
    flag_aa?: boolean
    flag_tc?: boolean
    flag_rd?: boolean
    flag_ra?: boolean
    questions?: Question[]
    answers?: Answer[]
    authorities?: Answer[]
    additionals?: Answer[]
  }
  export function encode(packet: Packet): Buffer
  export function decode(buf: Uint8Array): Packet
  export function streamEncode(packet: Packet): Buffer
  export function streamDecode(buf: Uint8Array): Packet
  export const AUTHORITATIVE_ANSWER: number
  export const TRUNCATED_RESPONSE: number
  export const RECURSION_DESIRED: number
  export const RECURSION_AVAILABLE: number
  const _default: {
    encode: typeof encode
    decode: typeof decode
    streamEncode: typeof streamEncode
    streamDecode: typeof streamDecode
    AUTHORITATIVE_ANSWER: number
    TRUNCATED_RESPONSE: number
    RECURSION_DESIRED: number
    RECURSION_AVAILABLE: number
  }
  export default _default
}

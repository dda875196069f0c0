/** The errors this package throws: the IPAM contract's classes (see @cnm/ipamapi). */
export {
  InvalidAddressSpaceError,
  InvalidPoolError,
  InvalidSubPoolError,
  InvalidPoolIdError,
  InvalidAddressError,
  InvalidIpamConfigError,
  UnsupportedRequestError,
  OutOfRangeError,
  BadPoolError,
  PoolNotFoundError,
  NoAvailablePoolError,
  PoolOverlapError,
  AddressInUseError,
  NoAvailableAddressError,
  DefaultPoolNotSupportedError,
  IpamStoreError,
} from '@cnm/ipamapi'
export type { IpamErrorCode } from '@cnm/ipamapi'

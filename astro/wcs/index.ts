/** World coordinate systems: TAN and TAN-SIP. */
export { TanSipWcs } from './tan-sip.js';
export type { TanSipParams, SipPolynomial } from './tan-sip.js';
export { WcsError, WcsHeaderError, WcsUnsupportedError, WcsConvergenceError } from './errors.js';

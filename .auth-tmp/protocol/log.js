export const noopLog = { debug() { }, info() { }, warn() { }, error() { } };

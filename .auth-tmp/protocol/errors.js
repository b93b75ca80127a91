/** API error codes (stable strings other clients can switch on) and the error class carrying them. */
export const ApiCode = {
    BadRequest: 'bad_request',
    BadEncoding: 'bad_encoding',
    TooLarge: 'too_large',
    InvalidSpec: 'invalid_spec',
    UnknownKind: 'unknown_kind',
    InputNotFound: 'input_not_found',
    InvalidInput: 'invalid_input',
    NotFound: 'not_found',
    Forbidden: 'forbidden',
    OverQuota: 'over_quota',
    Conflict: 'conflict',
    Unavailable: 'unavailable',
    Internal: 'internal',
};
export class UbatchApiError extends Error {
    code;
    where;
    details;
    name = 'UbatchApiError';
    constructor(code, message, where, details, options) {
        super(message, options);
        this.code = code;
        this.where = where;
        this.details = details;
    }
    toBody() {
        return {
            code: this.code,
            message: this.message,
            ...(this.where !== undefined ? { where: this.where } : {}),
            ...(this.details !== undefined ? { details: this.details } : {}),
        };
    }
}
export class DecodeError extends Error {
    subject;
    name = 'DecodeError';
    constructor(message, subject, options) {
        super(message, options);
        this.subject = subject;
    }
}

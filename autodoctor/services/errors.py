"""Errors services raise; views turn them into form errors or 4xx responses."""


class ServiceError(Exception):
    status_code = 400

    def __init__(self, message, field=None):
        super().__init__(message)
        self.message = message
        self.field = field


class ValidationError(ServiceError):
    status_code = 422


class NotFound(ServiceError):
    status_code = 404


class Forbidden(ServiceError):
    status_code = 403


class Conflict(ServiceError):
    """The state changed under the caller (already taken, already busy, already active)."""

    status_code = 409

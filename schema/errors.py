"""GraphQL errors with stable codes in `extensions.code`. Messages never carry data the
caller may not see."""

from __future__ import annotations

from graphql import GraphQLError


class CodedError(GraphQLError):
    code = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message, extensions={"code": self.code})


class ForbiddenError(CodedError):
    code = "FORBIDDEN"


class BadInputError(CodedError):
    code = "BAD_USER_INPUT"


class NotFoundError(CodedError):
    code = "NOT_FOUND"


class UnavailableError(CodedError):
    code = "UNAVAILABLE"


def forbidden_field(type_name: str, field_name: str) -> ForbiddenError:
    return ForbiddenError(f"not allowed to use {type_name}.{field_name}")


class UpstreamUnavailableError(CodedError):
    """An upstream subgraph (the registry) could not answer: the fields it owns are null,
    every local field still resolves."""

    code = "UPSTREAM_UNAVAILABLE"

"""How the JSON API answers errors, in one place: the route class of its router.

Bad input -> 422 ``{"detail": [problem, ...]}`` with every problem at once, the same shape
whether the request did not match the schema or a service refused it; an unknown cohort,
learner, series or occurrence -> 404; a plan that cannot be made, or a write that raced another
one -> 409; both ``{"detail": "..."}``. :func:`authenticated_route` checks the admin token
before anything else, the body included.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from scheduler.errors import InputError, NotFoundError, PlanningError, Problem
from scheduler.web.schemas import ProblemOut


def encodable_text(value: str) -> str:
    """Text that can be encoded (no unpaired surrogates from a JSON ``\\ud800``)."""
    return value.encode("utf-8", "replace").decode("utf-8")


def _problem_json(problems: Iterable[Problem]) -> JSONResponse:
    detail = [
        ProblemOut(
            message=encodable_text(p.message),
            source=encodable_text(p.source),
            line=p.line,
            field=None if p.field is None else encodable_text(p.field),
            value=None if p.value is None else encodable_text(p.value[:200]),
            hint=None if p.hint is None else encodable_text(p.hint),
        ).model_dump()
        for p in problems
    ]
    return JSONResponse({"detail": detail}, status_code=422)


def _message_json(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": encodable_text(message)}, status_code=status)


def _schema_problems(error: RequestValidationError) -> list[Problem]:
    problems = []
    for item in error.errors():
        loc = [str(part) for part in item.get("loc", ())]
        given = item.get("input")
        scalar = isinstance(given, str | int | float | bool) and given is not None
        problems.append(
            Problem(
                str(item.get("msg", "is not valid")),
                source=loc[0] if loc else "",
                field=".".join(loc[1:]) or None,
                value=str(given) if scalar else None,
            )
        )
    return problems


class ApiRoute(APIRoute):
    """Maps the product's errors (and request validation) to HTTP answers, for this router."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as e:
                return _problem_json(_schema_problems(e))
            except InputError as e:
                return _problem_json(e.problems)
            except NotFoundError as e:
                return _message_json(404, str(e))
            except PlanningError as e:
                return _message_json(409, f"no plan can be made: {e}")
            except IntegrityError:
                return _message_json(409, "another change got there first; try again")

        return answer


def authenticated_route(authenticate: Callable[[Request], object]) -> type[APIRoute]:
    """:class:`ApiRoute` that calls ``authenticate`` (``AdminAuth.api``: raises 401) before
    anything else: FastAPI reads and parses the body before it runs a route's dependencies, so
    without this a request without a token learns how its body is parsed (422) instead of 401."""

    class _AuthenticatedRoute(ApiRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def answer(request: Request) -> Response:
                await run_in_threadpool(authenticate, request)  # a database lookup
                return await handler(request)

            return answer

    return _AuthenticatedRoute

"""Links that put a feed into people's calendars: webcal, Google Calendar, Outlook."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

# A capability path as typed, not only as routed: any case (``/ME/``), doubled or trailing
# slashes, backslashes, and slashes percent-encoded once or more (``/feeds%2F``, ``%252F``).
# Everything after ``/feeds/`` or ``/me/`` up to a space, quote, ``?`` or ``#`` is hidden.
_SEPARATOR = r"(?:/|\\|%(?:25)*2f)"
_CAPABILITY_PATH = re.compile(rf"{_SEPARATOR}(feeds|me){_SEPARATOR}+[^\s\"'?#]+", re.IGNORECASE)


# A base URL every link the product writes, and a List-Unsubscribe header, can carry unchanged:
# http(s), a host name (underscores too) or an IPv6 literal, an optional port, an optional path
# of RFC 3986 characters; ASCII only, no user, query or fragment. ``URL_PATH`` is what may follow.
HTTP_ORIGIN = r"https?://(?:[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?"
URL_PATH = r"(?:/[A-Za-z0-9\-._~%!$&'()*+;=:@/]*)?"
BASE_URL = re.compile(HTTP_ORIGIN + URL_PATH)


@dataclass(frozen=True, slots=True)
class FeedLinks:
    https: str
    webcal: str
    google: str
    outlook: str
    page: str  # the learner's page, ``{base_url}/me/{token}`` (a learner's token opens it)


def feed_links(base_url: str, token: str, name: str) -> FeedLinks:
    """The ways to subscribe to the feed at ``{base_url}/feeds/{token}.ics``."""
    base, quoted = base_url.rstrip("/"), quote(token, safe="")
    https = f"{base}/feeds/{quoted}.ics"
    webcal = "webcal://" + https.split("://", 1)[1]
    # what urlencode writes, without its per-call type checks (once per email sent)
    google = "https://calendar.google.com/calendar/render?cid=" + quote_plus(webcal, safe="")
    outlook = (
        "https://outlook.live.com/calendar/0/addfromweb?url="
        + quote_plus(https, safe="")
        + "&name="
        + quote_plus(name, safe="")
    )
    return FeedLinks(https, webcal, google, outlook, f"{base}/me/{quoted}")


def redact_feed_path(text: str) -> str:
    """Hide the capability in any ``/feeds/<token>`` or ``/me/<token>`` path (for log lines),
    mistyped ones included: ``/feeds//TOKEN.ics``, ``/ME/TOKEN/``, ``/feeds%2FTOKEN.ics``."""
    lowered = text.lower()
    if "feeds" not in lowered and "me" not in lowered:  # cheap: most lines have neither
        return text
    return _CAPABILITY_PATH.sub(r"/\1/[redacted]", text)

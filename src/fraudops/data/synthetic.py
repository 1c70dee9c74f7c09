"""Synthetic card transactions in the ``transactions30`` schema (seed 000's 30 features).

A population of customers with stable attributes makes transactions spread over ``data.months``
months with a day-of-week and hour-of-day pattern. Frauds are a fixed share of rows drawn as a
mixture of archetypes: most follow clear patterns (card-not-present with CVV/AVS mismatch, account
takeover far from home, card testing at high velocity, bust-out on new accounts) but each pattern
shows only some of its signs, a share of frauds look almost legitimate, and a few legitimate rows
look suspicious. A good model therefore finds the signal, but never perfectly. The generator is
stationary over time (drift is injected separately, see ``fraudops.data.drift``) and fully
vectorised: one ``numpy.random.Generator`` per stream, so a seed gives an identical frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fraudops.config import DataSettings
from fraudops.errors import ConfigError
from fraudops.progress import Reporter
from fraudops.spec import TRANSACTIONS30, FeatureKind, FeatureSpec

Array = np.ndarray

# ---- merchant categories (ISO 18245) ---------------------------------------------------------
# code, share of legitimate rows, amount factor, chance to be online, transaction type code
# (1 purchase, 2 cash withdrawal, 3 transfer, 4 bill payment, 5 refund), recurring bill.
_MCC_TABLE: list[tuple[int, float, float, float, int, bool]] = [
    (5411, 0.19, 1.3, 0.08, 1, False),  # grocery stores
    (5812, 0.11, 1.0, 0.10, 1, False),  # restaurants
    (5814, 0.09, 0.35, 0.15, 1, False),  # fast food
    (5541, 0.08, 1.1, 0.02, 1, False),  # service stations
    (5999, 0.07, 1.0, 0.55, 1, False),  # miscellaneous retail
    (5311, 0.05, 1.6, 0.35, 1, False),  # department stores
    (5912, 0.05, 0.6, 0.10, 1, False),  # drug stores
    (5651, 0.04, 1.8, 0.45, 1, False),  # clothing
    (4121, 0.04, 0.6, 0.60, 1, False),  # taxis and ride sharing
    (4111, 0.03, 0.2, 0.30, 1, False),  # commuter transport
    (6011, 0.04, 2.5, 0.00, 2, False),  # ATM cash
    (5732, 0.03, 4.0, 0.55, 1, False),  # electronics
    (4899, 0.03, 0.8, 1.00, 4, True),  # cable and streaming
    (4900, 0.03, 2.2, 0.85, 4, True),  # utilities
    (5967, 0.02, 0.9, 0.95, 1, False),  # direct marketing, inbound
    (4829, 0.02, 4.0, 0.70, 3, False),  # money transfer
    (4511, 0.02, 8.0, 0.80, 1, False),  # airlines
    (7011, 0.02, 5.0, 0.60, 1, False),  # hotels
    (5944, 0.01, 6.0, 0.30, 1, False),  # jewelry
    (7995, 0.01, 2.0, 0.70, 1, False),  # betting and casino gambling
    (5691, 0.02, 1.5, 0.40, 1, False),  # men's and women's clothing
]
MCC_CODES = np.array([row[0] for row in _MCC_TABLE], dtype=np.int64)
_MCC_SHARE = np.array([row[1] for row in _MCC_TABLE]) / sum(row[1] for row in _MCC_TABLE)
_MCC_AMOUNT = np.array([row[2] for row in _MCC_TABLE])
_MCC_ONLINE = np.array([row[3] for row in _MCC_TABLE])
_MCC_TYPE = np.array([row[4] for row in _MCC_TABLE], dtype=np.int64)
_MCC_RECURRING = np.array([row[5] for row in _MCC_TABLE])


def _mcc_index(*codes: int) -> Array:
    return np.array([int(np.flatnonzero(c == MCC_CODES)[0]) for c in codes])


# Fraudsters favour goods that resell well and channels that need no card.
_FRAUD_ONLINE_MCC = _mcc_index(5999, 5732, 5967, 5944, 4829, 7995, 5311, 4511)
_FRAUD_TESTING_MCC = _mcc_index(5999, 5967, 4829, 7995, 4899)
_FRAUD_BUSTOUT_MCC = _mcc_index(5732, 5944, 6011, 4829, 5311)

# ---- time patterns -------------------------------------------------------------------------
_HOUR_LEGIT = np.array(
    [
        0.8,
        0.5,
        0.3,
        0.25,
        0.25,
        0.4,
        1.0,
        2.2,
        3.5,
        4.5,
        5.2,
        5.8,
        6.6,
        6.4,
        5.8,
        5.5,
        5.7,
        6.3,
        6.8,
        6.5,
        5.5,
        4.2,
        2.8,
        1.6,
    ]
)
_HOUR_FRAUD = np.array(
    [
        4.0,
        4.4,
        4.4,
        4.0,
        3.4,
        2.8,
        2.5,
        2.8,
        3.3,
        3.8,
        4.2,
        4.4,
        4.6,
        4.6,
        4.4,
        4.3,
        4.4,
        4.6,
        4.8,
        4.8,
        4.7,
        4.6,
        4.4,
        4.2,
    ]
)
_DOW_WEIGHT = np.array([1.0, 1.0, 1.02, 1.04, 1.12, 1.15, 0.95])  # Monday first

# ---- fraud archetypes ----------------------------------------------------------------------
LEGIT, CNP, TAKEOVER, TESTING, BUSTOUT, STEALTH = range(6)
ARCHETYPE_NAMES = {
    CNP: "card_not_present",
    TAKEOVER: "account_takeover",
    TESTING: "card_testing",
    BUSTOUT: "bust_out",
    STEALTH: "stealth",
}
_ARCHETYPE_SHARE = {CNP: 0.30, TAKEOVER: 0.22, TESTING: 0.16, BUSTOUT: 0.15, STEALTH: 0.17}
# Share of legitimate rows given one suspicious trait (travel, a mistyped CVV, a big purchase,
# a busy day): the false alarms every fraud model lives with.
_LEGIT_CONFUSER_RATE = 0.003
_NEW_ACCOUNT_DAYS = 120


@dataclass(frozen=True)
class Customers:
    """Stable per-customer attributes (one array element per customer)."""

    age: Array
    gender: Array
    tenure_months: Array
    account_age_days: Array
    credit_limit: Array
    previous_fraud: Array
    median_amount: Array  # home spending level
    online_share: Array  # home channel mix
    travel_share: Array  # how often far from home
    abroad_share: Array
    daily_rate: Array  # usual transactions per day; also how often they appear
    utilisation: Array  # usual share of the credit limit in use

    @property
    def count(self) -> int:
        return len(self.age)


def generate_transactions(
    data: DataSettings,
    spec: FeatureSpec,
    *,
    rows: int | None = None,
    seed: int | None = None,
    customer_seed: int | None = None,
    id_prefix: str = "tx-",
    progress: Reporter | None = None,
) -> pd.DataFrame:
    """``rows`` (default ``data.rows``) transactions in ``spec``'s columns; same seed, same frame.

    ``customer_seed`` (default ``seed``) draws the customer population: two sets sharing it share
    their customers. Rows are in time order; ids are ``<id_prefix><9-digit number>``.
    """
    _check_spec(spec)
    progress = progress or Reporter()
    n = data.rows if rows is None else rows
    if n < 1:
        raise ConfigError(f"rows must be at least 1, got {n}")
    seed = data.seed if seed is None else seed
    customer_seed = seed if customer_seed is None else customer_seed
    with progress.step("Generating transactions"):
        customers = make_customers(np.random.default_rng([customer_seed, 0]), data.customers)
        rng = np.random.default_rng([seed, 1])
        archetype = _archetypes(rng, n, data.fraud_rate)
        cust = _assign_customers(rng, customers, archetype)
        cols = _features(rng, customers, cust, archetype)
        stamps = _timestamps(rng, data, archetype)
        frame = _frame(spec, cols, customers, cust, archetype, stamps, id_prefix)
    return frame


def _check_spec(spec: FeatureSpec) -> None:
    # The generator knows one schema; a spec with other columns would get wrong data silently.
    ours, theirs = TRANSACTIONS30, spec
    roles = ("id_column", "customer_column", "timestamp_column", "label_column")
    if sorted(theirs.required_columns) != sorted(ours.required_columns) or any(
        getattr(theirs, r) != getattr(ours, r) for r in roles
    ):
        missing = sorted(set(ours.required_columns) - set(theirs.required_columns))
        extra = sorted(set(theirs.required_columns) - set(ours.required_columns))
        raise ConfigError(
            f"the synthetic generator only produces the transactions30 schema; spec "
            f"{spec.name!r} differs (missing {missing}, extra {extra}, or other key columns)"
        )


# ---- customers -----------------------------------------------------------------------------


def make_customers(rng: np.random.Generator, count: int) -> Customers:
    """A customer population; attributes are correlated the way a bank's book would be."""
    age = np.clip(np.rint(18 + rng.gamma(3.0, 9.0, count)), 18, 95).astype(np.int64)
    gender = rng.choice(3, size=count, p=[0.49, 0.49, 0.02]).astype(np.int64)
    adult_months = np.minimum((age - 18) * 12, 600)
    tenure = np.floor(rng.uniform(0, 1, count) * adult_months).astype(np.int64)
    # The card account is at most as old as the relationship; a few are brand new.
    oldest = tenure * 30.44 + 30
    account_age = rng.uniform(0.3, 1.0, count) * oldest
    new = rng.random(count) < 0.04
    account_age = np.where(
        new, np.minimum(rng.uniform(0, _NEW_ACCOUNT_DAYS, count), oldest), account_age
    )
    account_age = np.clip(np.floor(account_age), 0, 20_000).astype(np.int64)
    limit = rng.lognormal(np.log(4000), 0.7, count) * (1 + tenure / 300)
    limit = np.clip(np.round(limit, -2), 500, 200_000)
    return Customers(
        age=age,
        gender=gender,
        tenure_months=tenure,
        account_age_days=account_age,
        credit_limit=limit,
        previous_fraud=rng.poisson(0.04, count).astype(np.int64),
        median_amount=rng.lognormal(np.log(32), 0.5, count),
        online_share=rng.beta(2, 5, count),
        travel_share=rng.beta(1, 30, count),
        abroad_share=rng.beta(1, 25, count),
        daily_rate=rng.gamma(2.0, 1.2, count) + 0.1,
        utilisation=rng.beta(2, 5, count),
    )


def _archetypes(rng: np.random.Generator, n: int, fraud_rate: float) -> Array:
    """Per row: LEGIT or a fraud archetype; exactly round(n * fraud_rate) frauds (at least one
    when there are two rows or more, so that any slice can be trained on)."""
    frauds = round(n * fraud_rate)
    if frauds == 0 and n >= 2:
        frauds = 1
    archetype = np.full(n, LEGIT, dtype=np.int64)
    where = rng.choice(n, size=frauds, replace=False)
    kinds = np.array(list(_ARCHETYPE_SHARE))
    share = np.array(list(_ARCHETYPE_SHARE.values()))
    archetype[where] = rng.choice(kinds, size=frauds, p=share / share.sum())
    return archetype


def _assign_customers(rng: np.random.Generator, customers: Customers, archetype: Array) -> Array:
    """Customer index per row. Active customers appear more often; every customer appears once
    when there are enough legitimate rows; frauds hit new accounts and past victims more."""
    n, count = len(archetype), customers.count
    weight = customers.daily_rate / customers.daily_rate.sum()
    cust = rng.choice(count, size=n, p=weight)
    legit = np.flatnonzero(archetype == LEGIT)
    if len(legit) >= count:
        cust[legit[:count]] = rng.permutation(count)
    risk = customers.daily_rate * (1 + 1.5 * customers.previous_fraud)
    risk = risk * np.where((customers.age < 25) | (customers.age > 75), 1.6, 1.0)
    _draw_for(rng, cust, archetype != LEGIT, risk)
    new = customers.account_age_days < _NEW_ACCOUNT_DAYS
    _draw_for(rng, cust, archetype == BUSTOUT, risk * np.where(new, 60.0, 1.0))
    return cust


def _draw_for(rng: np.random.Generator, cust: Array, mask: Array, weight: Array) -> None:
    rows = np.flatnonzero(mask)
    if len(rows):
        cust[rows] = rng.choice(len(weight), size=len(rows), p=weight / weight.sum())


# ---- features ------------------------------------------------------------------------------


def _features(
    rng: np.random.Generator, customers: Customers, cust: Array, archetype: Array
) -> dict[str, Array]:
    """The 30 feature arrays: legitimate behaviour first, then each archetype's traces."""
    cols: dict[str, Array] = {}
    confuser = (archetype == LEGIT) & (rng.random(len(archetype)) < _LEGIT_CONFUSER_RATE)
    _merchant(rng, cols, customers, cust, archetype)
    _geography(rng, cols, customers, cust, archetype, confuser)
    _activity(rng, cols, customers, cust, archetype)
    _amounts(rng, cols, customers, cust, archetype, confuser)
    _card_checks(rng, cols, archetype, confuser)
    for name, attr in (
        ("customer_age", "age"),
        ("customer_gender", "gender"),
        ("customer_tenure_months", "tenure_months"),
        ("account_age_days", "account_age_days"),
        ("credit_limit", "credit_limit"),
        ("previous_fraud_incidents", "previous_fraud"),
    ):
        cols[name] = getattr(customers, attr)[cust]
    return cols


def _is(archetype: Array, *kinds: int) -> Array:
    return np.isin(archetype, kinds)


def _merchant(
    rng: np.random.Generator,
    cols: dict[str, Array],
    customers: Customers,
    cust: Array,
    archetype: Array,
) -> None:
    n = len(archetype)
    mcc = rng.choice(len(MCC_CODES), size=n, p=_MCC_SHARE)
    for kind, pool, p in (
        (CNP, _FRAUD_ONLINE_MCC, 0.8),
        (TESTING, _FRAUD_TESTING_MCC, 0.75),
        (BUSTOUT, _FRAUD_BUSTOUT_MCC, 0.7),
        (TAKEOVER, _FRAUD_ONLINE_MCC, 0.4),
    ):
        pick = (archetype == kind) & (rng.random(n) < p)
        mcc = np.where(pick, rng.choice(pool, size=n), mcc)
    # Channel: the merchant's usual mix shifted by the customer's habit.
    p_online = np.clip(_MCC_ONLINE[mcc] + 0.6 * (customers.online_share[cust] - 0.29), 0, 1)
    p_online = np.where(_MCC_ONLINE[mcc] == 0, 0.0, p_online)
    p_online = np.where(_is(archetype, CNP), 1.0, p_online)
    p_online = np.where(_is(archetype, TESTING), 0.85, p_online)
    online = rng.random(n) < p_online
    recurring = _MCC_RECURRING[mcc] & (rng.random(n) < 0.85) & _is(archetype, LEGIT, STEALTH)
    recurring |= _is(archetype, LEGIT) & online & (rng.random(n) < 0.03)
    type_code = np.where(recurring, 4, _MCC_TYPE[mcc])
    refund = (type_code == 1) & _is(archetype, LEGIT) & (rng.random(n) < 0.015)
    reputation = rng.beta(9, 1.5, n)
    shady = _is(archetype, CNP, TESTING) & (rng.random(n) < 0.75)
    reputation = np.where(shady, rng.beta(3, 2.5, n), reputation)
    reputation = np.where(_is(archetype, STEALTH), rng.beta(6, 1.8, n), reputation)
    cols["merchant_category_code"] = MCC_CODES[mcc]
    cols["online_transaction"] = online.astype(np.int64)
    cols["recurring_transaction"] = recurring.astype(np.int64)
    cols["transaction_type_code"] = np.where(refund, 5, type_code).astype(np.int64)
    cols["merchant_reputation_score"] = np.round(reputation, 4)
    cols["_mcc_index"] = mcc


def _geography(
    rng: np.random.Generator,
    cols: dict[str, Array],
    customers: Customers,
    cust: Array,
    archetype: Array,
    confuser: Array,
) -> None:
    n = len(archetype)
    abroad = rng.random(n) < customers.abroad_share[cust]
    travel = rng.random(n) < customers.travel_share[cust]
    takeover = _is(archetype, TAKEOVER)
    abroad |= takeover & (rng.random(n) < 0.5)
    abroad |= _is(archetype, CNP) & (rng.random(n) < 0.25)
    abroad |= confuser & (rng.random(n) < 0.3)
    travel |= takeover & (rng.random(n) < 0.65)
    risky_share = np.where(_is(archetype, LEGIT, STEALTH), 0.05, 0.45)
    high_risk = abroad & (rng.random(n) < risky_share)
    home = rng.lognormal(np.log(6), 1.0, n)
    home = np.where(travel, rng.lognormal(np.log(400), 1.0, n), home)
    home = np.where(abroad, rng.lognormal(np.log(2500), 0.7, n), home)
    # The fraudster is where the card was skimmed, not where its owner last used it.
    jump = takeover & (rng.random(n) < 0.65)
    hop = np.where(jump, rng.lognormal(np.log(600), 1.2, n), rng.lognormal(np.log(3), 1.1, n))
    online = cols["online_transaction"] == 1
    home = np.where(online & ~abroad & ~takeover, rng.lognormal(np.log(4), 1.0, n), home)
    cols["international_transaction"] = abroad.astype(np.int64)
    cols["high_risk_country"] = high_risk.astype(np.int64)
    cols["distance_from_home_km"] = np.round(np.clip(home, 0, 20_000), 2)
    cols["distance_from_last_transaction_km"] = np.round(np.clip(hop, 0, 20_000), 2)


def _activity(
    rng: np.random.Generator,
    cols: dict[str, Array],
    customers: Customers,
    cust: Array,
    archetype: Array,
) -> None:
    n = len(archetype)
    rate = customers.daily_rate[cust]
    day = rng.poisson(rate)
    burst = _is(archetype, TESTING) | (_is(archetype, TAKEOVER, CNP) & (rng.random(n) < 0.3))
    day = day + np.where(burst, 4 + rng.poisson(7, n), 0)
    week = day + rng.poisson(6 * rate)
    gap = rng.exponential(1440 / rate)
    gap = np.where(burst, rng.exponential(12, n), gap)
    gap = np.where(_is(archetype, TAKEOVER) & ~burst, rng.exponential(90, n), gap)
    # Today's activity against the customer's usual, as a risk engine's velocity score would.
    velocity = 0.3 * (day + 1) / (rate + 1) * rng.lognormal(0, 0.2, n)
    cols["num_transactions_24h"] = day.astype(np.int64)
    cols["num_transactions_7days"] = week.astype(np.int64)
    cols["time_since_last_transaction_min"] = np.round(np.clip(gap, 0.1, 1_000_000), 1)
    cols["velocity_score"] = np.round(velocity, 4)


def _amounts(
    rng: np.random.Generator,
    cols: dict[str, Array],
    customers: Customers,
    cust: Array,
    archetype: Array,
    confuser: Array,
) -> None:
    n = len(archetype)
    mcc = cols.pop("_mcc_index")
    typical = customers.median_amount[cust]
    avg30 = typical * 1.6 * rng.lognormal(0, 0.2, n)
    max30 = avg30 * (1.8 + rng.gamma(2.0, 1.0, n))
    amount = typical * _MCC_AMOUNT[mcc] * rng.lognormal(0, 0.75, n)
    spike = avg30 * rng.lognormal(np.log(3.5), 0.7, n)
    amount = np.where(_is(archetype, CNP, TAKEOVER, BUSTOUT), spike, amount)
    amount = np.where(confuser & (rng.random(n) < 0.4), spike, amount)
    tiny = rng.uniform(0.5, 12, n)
    amount = np.where(_is(archetype, TESTING) & (rng.random(n) < 0.55), tiny, amount)
    amount = np.where(_is(archetype, STEALTH), amount * 1.8, amount)
    cash = MCC_CODES[mcc] == 6011
    amount = np.where(cash, np.maximum(np.round(amount / 20) * 20, 20), amount)
    used = customers.utilisation[cust] + rng.normal(0, 0.08, n)
    drained = _is(archetype, BUSTOUT) | (_is(archetype, TAKEOVER) & (rng.random(n) < 0.5))
    used = np.where(drained, rng.uniform(0.75, 1.0, n), used)
    cols["transaction_amount"] = np.round(np.clip(amount, 0.5, 1_000_000), 2)
    cols["avg_transaction_amount_30days"] = np.round(avg30, 2)
    cols["max_transaction_amount_30days"] = np.round(max30, 2)
    cols["available_credit_ratio"] = np.round(np.clip(1 - used, 0, 1), 4)


def _card_checks(
    rng: np.random.Generator, cols: dict[str, Array], archetype: Array, confuser: Array
) -> None:
    """Card present → chip (mostly) and PIN (often); online → CVV and address checks."""
    n = len(archetype)
    online = cols["online_transaction"] == 1
    present = ~online
    cash = cols["merchant_category_code"] == 6011
    cloned = _is(archetype, TAKEOVER) & present & (rng.random(n) < 0.7)
    chip = present & (rng.random(n) < 0.92) & ~cloned
    pin = (present & chip & (rng.random(n) < 0.45)) | (cash & ~cloned)
    cvv_fail = online & (rng.random(n) < 0.008)
    cvv_fail |= online & _is(archetype, CNP) & (rng.random(n) < 0.65)
    cvv_fail |= online & _is(archetype, TESTING) & (rng.random(n) < 0.3)
    cvv_fail |= online & confuser & (rng.random(n) < 0.3)
    avs_fail = online & (rng.random(n) < 0.015)
    avs_fail |= online & _is(archetype, CNP, TAKEOVER) & (rng.random(n) < 0.6)
    cols["card_present"] = present.astype(np.int64)
    cols["chip_transaction"] = chip.astype(np.int64)
    cols["pin_used"] = pin.astype(np.int64)
    cols["cvv_match"] = (~cvv_fail).astype(np.int64)
    cols["address_verification_match"] = (~avs_fail).astype(np.int64)


# ---- time ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Stamps:
    micros: Array  # microseconds since the epoch, UTC
    hour: Array
    day_of_week: Array


def time_range(data: DataSettings) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[start, end) of the synthetic data: ``data.months`` months from ``data.start`` (UTC)."""
    try:
        start = pd.Timestamp(data.start)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"data.start: not a date: {data.start!r} ({exc})") from None
    start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
    start = start.normalize()
    return start, start + pd.DateOffset(months=data.months)


def _timestamps(rng: np.random.Generator, data: DataSettings, archetype: Array) -> _Stamps:
    n = len(archetype)
    start, end = time_range(data)
    days = (end - start).days
    dow = (start.dayofweek + np.arange(days)) % 7
    day_p = _DOW_WEIGHT[dow] / _DOW_WEIGHT[dow].sum()
    day = rng.choice(days, size=n, p=day_p)
    night_owl = _is(archetype, CNP, TAKEOVER, TESTING, BUSTOUT) | (
        _is(archetype, STEALTH) & (rng.random(n) < 0.5)
    )
    hour = np.where(
        night_owl,
        rng.choice(24, size=n, p=_HOUR_FRAUD / _HOUR_FRAUD.sum()),
        rng.choice(24, size=n, p=_HOUR_LEGIT / _HOUR_LEGIT.sum()),
    )
    seconds = (day * 24 + hour).astype(np.int64) * 3600 + rng.integers(0, 3600, size=n)
    micros = start.value // 1000 + seconds * 1_000_000
    return _Stamps(micros=micros, hour=hour.astype(np.int64), day_of_week=dow[day].astype(np.int64))


# ---- assembly ------------------------------------------------------------------------------


def _frame(
    spec: FeatureSpec,
    cols: dict[str, Array],
    customers: Customers,
    cust: Array,
    archetype: Array,
    stamps: _Stamps,
    id_prefix: str,
) -> pd.DataFrame:
    order = np.argsort(stamps.micros, kind="stable")
    width = max(5, len(str(customers.count - 1)))
    # Python formatting beats np.char by ~10x; customer ids are formatted once per customer.
    ids = np.array([f"{id_prefix}{i:09d}" for i in range(len(order))], dtype=object)
    cust_names = np.array([f"cust-{i:0{width}d}" for i in range(customers.count)], dtype=object)
    out: dict[str, object] = {
        "transaction_id": ids,
        "customer_id": cust_names[cust[order]],
        "transaction_timestamp": pd.DatetimeIndex(
            stamps.micros[order].astype("datetime64[us]")
        ).tz_localize("UTC"),
        "is_fraud": (archetype[order] != LEGIT).astype(np.int64),
        "transaction_hour": stamps.hour[order],
        "transaction_day_of_week": stamps.day_of_week[order],
    }
    for feature in spec.features:
        if feature.name in out:
            continue
        values = cols[feature.name][order]
        lo, hi = feature.bounds
        if feature.kind is FeatureKind.numeric and (lo is not None or hi is not None):
            values = np.clip(values, lo, hi)  # a user's narrower bounds on the same schema
        out[feature.name] = values.astype(np.int64 if feature.dtype == "int" else np.float64)
    return pd.DataFrame(out)[spec.required_columns]

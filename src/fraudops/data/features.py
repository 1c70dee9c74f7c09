"""The 30 feature columns of the synthetic generator: legitimate behaviour, then each fraud
archetype's traces (merchant, geography, activity, amounts, card checks)."""

from __future__ import annotations

import numpy as np

from fraudops.data.archetypes import BUSTOUT, CNP, LEGIT, STEALTH, TAKEOVER, TESTING, is_kind
from fraudops.data.customers import Customers

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

# Share of legitimate rows given one suspicious trait (travel, a mistyped CVV, a big purchase,
# a busy day): the false alarms every fraud model lives with.
LEGIT_CONFUSER_RATE = 0.003


def features(
    rng: np.random.Generator, customers: Customers, cust: Array, archetype: Array
) -> dict[str, Array]:
    """The 30 feature arrays: legitimate behaviour first, then each archetype's traces."""
    cols: dict[str, Array] = {}
    confuser = (archetype == LEGIT) & (rng.random(len(archetype)) < LEGIT_CONFUSER_RATE)
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
    p_online = np.where(is_kind(archetype, CNP), 1.0, p_online)
    p_online = np.where(is_kind(archetype, TESTING), 0.85, p_online)
    online = rng.random(n) < p_online
    recurring = _MCC_RECURRING[mcc] & (rng.random(n) < 0.85) & is_kind(archetype, LEGIT, STEALTH)
    recurring |= is_kind(archetype, LEGIT) & online & (rng.random(n) < 0.03)
    type_code = np.where(recurring, 4, _MCC_TYPE[mcc])
    refund = (type_code == 1) & is_kind(archetype, LEGIT) & (rng.random(n) < 0.015)
    reputation = rng.beta(9, 1.5, n)
    shady = is_kind(archetype, CNP, TESTING) & (rng.random(n) < 0.75)
    reputation = np.where(shady, rng.beta(3, 2.5, n), reputation)
    reputation = np.where(is_kind(archetype, STEALTH), rng.beta(6, 1.8, n), reputation)
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
    takeover = is_kind(archetype, TAKEOVER)
    abroad |= takeover & (rng.random(n) < 0.5)
    abroad |= is_kind(archetype, CNP) & (rng.random(n) < 0.25)
    abroad |= confuser & (rng.random(n) < 0.3)
    travel |= takeover & (rng.random(n) < 0.65)
    risky_share = np.where(is_kind(archetype, LEGIT, STEALTH), 0.05, 0.45)
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
    takeover_or_cnp = is_kind(archetype, TAKEOVER, CNP)
    burst = is_kind(archetype, TESTING) | (takeover_or_cnp & (rng.random(n) < 0.3))
    day = day + np.where(burst, 4 + rng.poisson(7, n), 0)
    week = day + rng.poisson(6 * rate)
    gap = rng.exponential(1440 / rate)
    gap = np.where(burst, rng.exponential(12, n), gap)
    gap = np.where(is_kind(archetype, TAKEOVER) & ~burst, rng.exponential(90, n), gap)
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
    amount = np.where(is_kind(archetype, CNP, TAKEOVER, BUSTOUT), spike, amount)
    amount = np.where(confuser & (rng.random(n) < 0.4), spike, amount)
    tiny = rng.uniform(0.5, 12, n)
    amount = np.where(is_kind(archetype, TESTING) & (rng.random(n) < 0.55), tiny, amount)
    amount = np.where(is_kind(archetype, STEALTH), amount * 1.8, amount)
    cash = MCC_CODES[mcc] == 6011
    amount = np.where(cash, np.maximum(np.round(amount / 20) * 20, 20), amount)
    used = customers.utilisation[cust] + rng.normal(0, 0.08, n)
    drained = is_kind(archetype, BUSTOUT) | (is_kind(archetype, TAKEOVER) & (rng.random(n) < 0.5))
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
    cloned = is_kind(archetype, TAKEOVER) & present & (rng.random(n) < 0.7)
    chip = present & (rng.random(n) < 0.92) & ~cloned
    pin = (present & chip & (rng.random(n) < 0.45)) | (cash & ~cloned)
    cvv_fail = online & (rng.random(n) < 0.008)
    cvv_fail |= online & is_kind(archetype, CNP) & (rng.random(n) < 0.65)
    cvv_fail |= online & is_kind(archetype, TESTING) & (rng.random(n) < 0.3)
    cvv_fail |= online & confuser & (rng.random(n) < 0.3)
    avs_fail = online & (rng.random(n) < 0.015)
    avs_fail |= online & is_kind(archetype, CNP, TAKEOVER) & (rng.random(n) < 0.6)
    cols["card_present"] = present.astype(np.int64)
    cols["chip_transaction"] = chip.astype(np.int64)
    cols["pin_used"] = pin.astype(np.int64)
    cols["cvv_match"] = (~cvv_fail).astype(np.int64)
    cols["address_verification_match"] = (~avs_fail).astype(np.int64)

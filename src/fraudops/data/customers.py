"""The customer population of the synthetic generator: stable attributes, and who makes each row."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fraudops.data.archetypes import BUSTOUT, LEGIT

Array = np.ndarray

NEW_ACCOUNT_DAYS = 120


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
        new, np.minimum(rng.uniform(0, NEW_ACCOUNT_DAYS, count), oldest), account_age
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


def assign_customers(rng: np.random.Generator, customers: Customers, archetype: Array) -> Array:
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
    new = customers.account_age_days < NEW_ACCOUNT_DAYS
    _draw_for(rng, cust, archetype == BUSTOUT, risk * np.where(new, 60.0, 1.0))
    return cust


def _draw_for(rng: np.random.Generator, cust: Array, mask: Array, weight: Array) -> None:
    rows = np.flatnonzero(mask)
    if len(rows):
        cust[rows] = rng.choice(len(weight), size=len(rows), p=weight / weight.sum())

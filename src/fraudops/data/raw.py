"""Raw card transactions to try the derived features on (the built-in spec ``cards``).

Follows the transaction simulator of the Fraud Detection Handbook (Le Borgne et al., "Reproducible
Machine Learning for Credit Card Fraud Detection - Practical Handbook", chapter 3), vectorised:

- customers live at a point of a 100 x 100 grid, spend ``N(mean, mean / 2)`` with a mean drawn in
  [5, 100] (a negative draw becomes ``U(0, 2 mean)``), and make ``Poisson(rate)`` transactions a
  day, ``rate`` drawn in [0, 4], at a time of day ``N(12:00, 20,000 s)`` (draws outside the day
  are dropped); each pays at terminals drawn uniformly among those within ``radius`` (5) of home
  (a customer with none makes no transaction);
- frauds, by scenario (a later one overrides an earlier one, as in the handbook):
  1. any amount above ``fraud_amount`` (220);
  2. compromised terminals: a few terminals a day (2 per 10,000) turn fraudulent for 28 days, and
     every transaction made there then is a fraud;
  3. compromised cards: a few customers a day (3 per 5,000) have a third of their transactions in
     the next 14 days made fraudulent, with the amount multiplied by 5.

Scenario 2 is what a terminal's recent fraud rate catches and scenario 3 what a customer's recent
mean amount catches: the amount alone leaves both unseen (issue 19: ROC-AUC ~0.64 alone, ~0.9
with the window features). The handbook's sizes (5,000 customers, 10,000 terminals, 183 days)
give ~1.75M transactions, ~0.8% fraud; the compromise rates scale with the population so that
smaller sets keep a similar fraud rate.

Labels arrive late, as in a bank: ``label_available_at`` is when a transaction's label is known,
a fraud 1 day + Exp(2 days) after it (capped at 10 days; customers report frauds quickly), a
legitimate one when its dispute period ends, 7 to 30 days after it.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from fraudops.errors import ConfigError, FraudopsError
from fraudops.progress import Reporter

Array = np.ndarray

DAY_S = 86_400
GRID = 100.0  # customers and terminals live on a GRID x GRID square
# The handbook's population, against which the compromise rates are stated.
HANDBOOK_CUSTOMERS = 5_000
HANDBOOK_TERMINALS = 10_000

# The columns of a raw file, in order (the built-in spec `cards` reads the first six).
TX_ID, TX_TIME, CUSTOMER_ID, TERMINAL_ID, AMOUNT, IS_FRAUD = (
    "tx_id",
    "tx_time",
    "customer_id",
    "terminal_id",
    "amount",
    "is_fraud",
)
FRAUD_SCENARIO, LABEL_AVAILABLE_AT = "fraud_scenario", "label_available_at"
COLUMNS = [TX_ID, TX_TIME, CUSTOMER_ID, TERMINAL_ID, AMOUNT, IS_FRAUD, FRAUD_SCENARIO]
COLUMNS.append(LABEL_AVAILABLE_AT)
RAW_SPEC = "cards"  # the built-in spec of these files
# The names `lake load` reads (lake/formats.py; data/ sits above lake/ in the layout).
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2")
PARQUET_SUFFIXES = (".parquet", ".pq")
TX_ID_DIGITS = 10  # fixed width: ids sort as text exactly as they sort as numbers (time order)


@dataclass(frozen=True)
class RawConfig:
    """The simulated world: its size, its period and its fraud scenarios."""

    customers: int = HANDBOOK_CUSTOMERS
    terminals: int = HANDBOOK_TERMINALS
    days: int = 183
    start: str = "2018-04-01"  # UTC midnight of the first day
    seed: int = 0
    radius: float = 5.0
    fraud_amount: float = 220.0
    terminals_compromised_per_day: float = 2.0  # per 10,000 terminals
    terminal_compromise_days: int = 28
    cards_compromised_per_day: float = 3.0  # per 5,000 customers
    card_compromise_days: int = 14
    card_fraud_share: float = 1 / 3
    card_amount_factor: float = 5.0
    fraud_delay_mean_days: float = 2.0
    fraud_delay_max_days: float = 10.0
    legit_delay_days: tuple[float, float] = (7.0, 30.0)

    def check(self) -> None:
        for name in ("customers", "terminals", "days"):
            if getattr(self, name) < 1:
                raise ConfigError(f"raw data: {name} must be at least 1, got {getattr(self, name)}")
        if self.radius <= 0:
            raise ConfigError(f"raw data: radius must be positive, got {self.radius}")
        try:
            self.start_time()
        except (ValueError, TypeError):
            raise ConfigError(
                f"raw data: start {self.start!r} is no date (write e.g. 2018-04-01)"
            ) from None

    def start_time(self) -> pd.Timestamp:
        """UTC midnight of the first day."""
        stamp = pd.Timestamp(self.start)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        return stamp.normalize()


@dataclass
class RawDataset:
    """The generated transactions (time order) and what the generator knows about them."""

    table: pa.Table
    config: RawConfig
    scenario_counts: dict[str, int] = field(default_factory=dict)
    elapsed_seconds: float = 0.0

    @property
    def rows(self) -> int:
        return self.table.num_rows

    @property
    def fraud_rate(self) -> float:
        return float(pc.mean(self.table[IS_FRAUD]).as_py() or 0.0) if self.rows else 0.0

    def to_pandas(self) -> pd.DataFrame:
        return self.table.to_pandas()

    def summary(self) -> dict[str, Any]:
        times = self.table[TX_TIME]
        first, last = pc.min(times).as_py(), pc.max(times).as_py()
        return {
            "rows": self.rows,
            "customers": self.config.customers,
            "terminals": self.config.terminals,
            "days": self.config.days,
            "seed": self.config.seed,
            "fraud_rate": round(self.fraud_rate, 6),
            "frauds_by_scenario": dict(self.scenario_counts),
            "time_start": first.isoformat() if first else None,
            "time_end": last.isoformat() if last else None,
            "spec": RAW_SPEC,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
        }


def generate_raw(config: RawConfig | None = None, progress: Reporter | None = None) -> RawDataset:
    """The transactions of ``config``'s world in time order; one seed, one table."""
    started = time.perf_counter()
    config = config or RawConfig()
    config.check()
    progress = progress or Reporter()
    # One generator per stream: changing one part (the fraud scenarios, say) leaves the others.
    streams = np.random.SeedSequence(config.seed).spawn(5)
    world_rng, tx_rng, terminal_rng, card_rng, label_rng = (
        np.random.default_rng(s) for s in streams
    )
    with progress.step("Drawing customers and terminals"):
        world = _World.draw(config, world_rng)
    with progress.step("Drawing transactions"):
        tx = _transactions(config, world, tx_rng)
    if len(tx.seconds) == 0:
        raise ConfigError(
            f"raw data: {config.customers} customers made no transaction in {config.days} days "
            f"(none has one of the {config.terminals} terminals within {config.radius:g} of "
            "home?): add customers, terminals or days"
        )
    with progress.step("Adding frauds"):
        scenario = _frauds(config, tx, terminal_rng, card_rng)
    with progress.step("Building the table"):
        table = _table(config, tx, scenario, label_rng)
    counts = np.bincount(scenario, minlength=4)
    return RawDataset(
        table=table,
        config=config,
        scenario_counts={
            "amount": int(counts[1]),
            "compromised_terminal": int(counts[2]),
            "compromised_card": int(counts[3]),
        },
        elapsed_seconds=time.perf_counter() - started,
    )


@dataclass(frozen=True)
class _World:
    mean_amount: Array  # per customer
    daily_rate: Array
    offsets: Array  # customer c's terminals: terminals[offsets[c]:offsets[c + 1]]
    terminals: Array

    @classmethod
    def draw(cls, config: RawConfig, rng: np.random.Generator) -> _World:
        home = rng.uniform(0, GRID, (config.customers, 2))
        mean_amount = rng.uniform(5, 100, config.customers)
        daily_rate = rng.uniform(0, 4, config.customers)
        places = rng.uniform(0, GRID, (config.terminals, 2))
        offsets, terminals = _within(home, places, config.radius)
        return cls(mean_amount, daily_rate, offsets, terminals)


def _within(home: Array, places: Array, radius: float) -> tuple[Array, Array]:
    """The terminals within ``radius`` of each customer, as CSR (offsets, terminal indices).

    Terminals are sorted by x so that a block of customers only measures the strip of terminals
    whose x is within reach: 5,000 x 10,000 pairs would be 50M distances, the strips ~10% of that.
    """
    by_x = np.argsort(places[:, 0], kind="stable")
    xs, ys = places[by_x, 0], places[by_x, 1]
    customers_by_x = np.argsort(home[:, 0], kind="stable")
    found: list[tuple[Array, Array]] = []
    block = 256
    for lo in range(0, len(home), block):
        who = customers_by_x[lo : lo + block]
        cx, cy = home[who, 0], home[who, 1]
        first = np.searchsorted(xs, cx.min() - radius, side="left")
        last = np.searchsorted(xs, cx.max() + radius, side="right")
        dx = cx[:, None] - xs[None, first:last]
        dy = cy[:, None] - ys[None, first:last]
        rows, cols = np.nonzero(dx * dx + dy * dy <= radius * radius)
        found.append((who[rows], by_x[first + cols]))
    customer = np.concatenate([f[0] for f in found]) if found else np.empty(0, np.int64)
    terminal = np.concatenate([f[1] for f in found]) if found else np.empty(0, np.int64)
    order = np.lexsort((terminal, customer))  # by customer, then terminal: seed-stable
    counts = np.bincount(customer, minlength=len(home))
    offsets = np.concatenate([[0], np.cumsum(counts)])
    return offsets, terminal[order]


@dataclass
class _Transactions:
    seconds: Array  # from the start of the first day, whole seconds, ascending
    customer: Array
    terminal: Array
    amount: Array

    @property
    def day(self) -> Array:
        return self.seconds // DAY_S


def _transactions(config: RawConfig, world: _World, rng: np.random.Generator) -> _Transactions:
    n_customers, days = config.customers, config.days
    per_day = rng.poisson(world.daily_rate[:, None], (n_customers, days))
    cell = np.repeat(np.arange(n_customers * days), per_day.ravel())
    customer, day = np.divmod(cell, days)
    n = len(cell)
    time_of_day = rng.normal(DAY_S / 2, 20_000, n).astype(np.int64)  # truncated, as the handbook
    mean = world.mean_amount[customer]
    amount = rng.normal(mean, mean / 2)
    amount = np.where(amount < 0, rng.uniform(0, 2 * mean), amount)
    reachable = np.diff(world.offsets)[customer]
    pick = (rng.random(n) * reachable).astype(np.int64)
    keep = (time_of_day > 0) & (time_of_day < DAY_S) & (reachable > 0)
    seconds = day * DAY_S + time_of_day
    order = np.flatnonzero(keep)
    order = order[np.argsort(seconds[order], kind="stable")]  # ties: by customer, as drawn
    return _Transactions(
        seconds=seconds[order],
        customer=customer[order],
        terminal=world.terminals[world.offsets[customer[order]] + pick[order]],
        amount=np.round(amount[order], 2),
    )


def _compromised(
    rng: np.random.Generator, population: int, days: int, per_day: float, duration: int
) -> Array:
    """A (population, days) mask: who is compromised on which day. Each day ``per_day`` members
    (the fraction as a chance of one more) start a compromise of ``duration`` days."""
    whole = int(per_day)
    starts = whole + (rng.random(days) < per_day - whole)
    start_day = np.repeat(np.arange(days), starts)
    member = rng.integers(0, population, len(start_day))
    edges = np.zeros((population, days + 1), np.int32)  # +1 on the first day, -1 after the last
    np.add.at(edges, (member, start_day), 1)
    np.add.at(edges, (member, np.minimum(start_day + duration, days)), -1)
    mask: Array = np.cumsum(edges, axis=1)[:, :days] > 0
    return mask


def _frauds(
    config: RawConfig,
    tx: _Transactions,
    terminal_rng: np.random.Generator,
    card_rng: np.random.Generator,
) -> Array:
    """Each transaction's fraud scenario (0: legitimate); multiplies the amounts of scenario 3."""
    scenario = np.zeros(len(tx.seconds), np.int64)
    scenario[tx.amount > config.fraud_amount] = 1
    day = tx.day
    terminal_rate = config.terminals_compromised_per_day * config.terminals / HANDBOOK_TERMINALS
    bad_terminal = _compromised(
        terminal_rng, config.terminals, config.days, terminal_rate, config.terminal_compromise_days
    )
    scenario[bad_terminal[tx.terminal, day]] = 2
    card_rate = config.cards_compromised_per_day * config.customers / HANDBOOK_CUSTOMERS
    bad_card = _compromised(
        card_rng, config.customers, config.days, card_rate, config.card_compromise_days
    )
    stolen = bad_card[tx.customer, day] & (card_rng.random(len(day)) < config.card_fraud_share)
    tx.amount[stolen] = np.round(tx.amount[stolen] * config.card_amount_factor, 2)
    scenario[stolen] = 3
    return scenario


def _table(
    config: RawConfig, tx: _Transactions, scenario: Array, rng: np.random.Generator
) -> pa.Table:
    n = len(tx.seconds)
    fraud = scenario > 0
    fraud_delay = DAY_S * np.minimum(
        1 + rng.exponential(config.fraud_delay_mean_days, n), config.fraud_delay_max_days
    )
    legit_delay = DAY_S * rng.uniform(*config.legit_delay_days, n)
    delay = np.where(fraud, fraud_delay, legit_delay).astype(np.int64)
    start_s = int(config.start_time().timestamp())
    return pa.table(
        {
            TX_ID: _ids("tx-", np.arange(n), TX_ID_DIGITS),
            TX_TIME: _times(start_s + tx.seconds),
            CUSTOMER_ID: _ids("C", tx.customer, len(str(config.customers - 1))),
            TERMINAL_ID: _ids("T", tx.terminal, len(str(config.terminals - 1))),
            AMOUNT: pa.array(tx.amount, pa.float64()),
            IS_FRAUD: pa.array(fraud.astype(np.int8), pa.int8()),
            FRAUD_SCENARIO: pa.array(scenario.astype(np.int8), pa.int8()),
            LABEL_AVAILABLE_AT: _times(start_s + tx.seconds + delay),
        }
    )


def _ids(prefix: str, numbers: Array, width: int) -> pa.Array:
    """``<prefix><number zero-padded to width>``, written as bytes by NumPy: string kernels or
    Python strings take ~20x longer for 1.75M ids."""
    head = np.frombuffer(prefix.encode(), np.uint8)
    size = len(head) + width
    chars = np.empty((len(numbers), size), np.uint8)
    chars[:, : len(head)] = head
    rest = np.asarray(numbers, np.int64).copy()
    for column in range(size - 1, len(head) - 1, -1):
        rest, digit = np.divmod(rest, 10)
        chars[:, column] = digit + ord("0")
    offsets = pa.py_buffer((np.arange(len(numbers) + 1, dtype=np.int32) * size).tobytes())
    return pa.StringArray.from_buffers(len(numbers), offsets, pa.py_buffer(chars.tobytes()))


def _times(epoch_seconds: Array) -> pa.Array:
    return pa.array(epoch_seconds.astype("datetime64[s]")).cast(pa.timestamp("us", tz="UTC"))


# ---- files -----------------------------------------------------------------------------------


def write_raw(dataset: RawDataset, path: Path) -> Path:
    """Write the table as Parquet or CSV (by ``path``'s suffix), whole or not at all."""
    name = path.name.lower()
    if not name.endswith(CSV_SUFFIXES + PARQUET_SUFFIXES):
        known = ", ".join(CSV_SUFFIXES + PARQUET_SUFFIXES)
        raise ConfigError(f"cannot tell the format of {path}: name it with one of {known}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create output folder {path.parent}: {exc}") from None
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        if name.endswith(PARQUET_SUFFIXES):
            pq.write_table(dataset.table, tmp)
        else:
            # pyarrow compresses by the name; the temporary one has none, so ask for it.
            compression = {".gz": "gzip", ".bz2": "bz2"}.get(path.suffix.lower())
            if compression is None:
                pa_csv.write_csv(dataset.table, tmp)
            else:
                with pa.CompressedOutputStream(str(tmp), compression) as sink:
                    pa_csv.write_csv(dataset.table, sink)
        os.replace(tmp, path)
    except OSError as exc:
        raise FraudopsError(f"cannot write {path}: {exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return path

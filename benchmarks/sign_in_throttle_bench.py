"""How many passwords a guessing script gets checked under the sign-in throttle.

A script tries a wrong password against one account 5 times a second for 3 hours, under
the real default policy, through `authenticate` on a real SQLite store. The clock is
simulated (`now=`), so the run takes seconds: every attempt inside a refusal window is
refused the same way, so the run steps to the first tick after the window.

    python benchmarks/sign_in_throttle_bench.py
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from pathlib import Path

from store.accounts import AuthenticationFailed, SignInThrottled, add_user, authenticate
from store.db import open_store
from store.settings import Settings

RATE_PER_S = 5.0
HORIZON_S = 3 * 3600
SPANS_S = (10, 60, 300, 1200, 3600, HORIZON_S)


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="throttle-bench-"))
    store = open_store(Settings(home=home, database_url=f"sqlite:///{home / 'turnscribe.db'}"))
    with store.session() as session:
        add_user(session, "ann", "correct horse battery", ["annotator"], actor="bench")
        session.commit()
    start = dt.datetime(2026, 11, 30, tzinfo=dt.timezone.utc)
    step = 1 / RATE_PER_S
    checked: list[float] = []
    refused_windows = 0
    at, started = start, time.perf_counter()
    while at < start + dt.timedelta(seconds=HORIZON_S):
        with store.session() as session:
            try:
                authenticate(session, "ann", "a wrong guess", now=at)
            except SignInThrottled as throttled:
                refused_windows += 1
                at += dt.timedelta(seconds=(int(throttled.retry_after_s / step) + 1) * step)
                session.commit()
                continue
            except AuthenticationFailed:
                checked.append((at - start).total_seconds())
            session.commit()
        at += dt.timedelta(seconds=step)
    store.close()
    print(f"{RATE_PER_S:g} wrong passwords a second for {HORIZON_S / 3600:g} h "
          f"({int(HORIZON_S * RATE_PER_S)} tries without a throttle):")
    for span in SPANS_S:
        print(f"  passwords checked in the first {span:>6} s: {sum(1 for c in checked if c < span)}")
    print(f"  checked at (s): {', '.join(f'{c:g}' for c in checked[:14])} …")
    print(f"  ({refused_windows} refusal windows; {time.perf_counter() - started:.1f} s wall)")


if __name__ == "__main__":
    main()

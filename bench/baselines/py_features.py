"""The per-event feature work a river user writes in Python: one dict of user states, a few
lazily time-decayed counters (sessions 30d, page views 30d, purchases 90d, revenue 90d) with
first/last activity, updated per event, and the feature vector recomputed at each event.
Deliberately smaller than churnstream's state (16 counters, distinct active days, gaps), so
its events/s is an upper bound for a Python pipeline."""

import math
import time

DAY_MS = 86400000.0
# Half-lives in days: two 30-day counters, two 90-day counters.
H30 = 30.0
H90 = 90.0
# ev_type_t indexes (processor/core/event.h), as bench/dump_events writes them.
SESSION_START, PAGE_VIEW, PURCHASE, REFUND, SUBSCRIPTION_CANCEL = 0, 1, 5, 6, 9


def run(events):
    """events: list of (user_id, event_time_ms, event type index as in ev_type_t, amount). Returns (seconds, number
    of users, a checksum of the last feature vectors so the work cannot be skipped)."""
    states = {}
    log1p = math.log1p
    check = 0.0
    t0 = time.perf_counter()
    for uid, t, etype, amount in events:
        st = states.get(uid)
        if st is None:
            # t_ref, sessions_30d, page_views_30d, purchases_90d, revenue_90d, first, last
            st = [t, 0.0, 0.0, 0.0, 0.0, t, t]
            states[uid] = st
        dt = (t - st[0]) / DAY_MS
        if dt > 0:
            d30 = 2.0 ** (-dt / H30)
            d90 = 2.0 ** (-dt / H90)
            st[1] *= d30
            st[2] *= d30
            st[3] *= d90
            st[4] *= d90
            st[0] = t
            w30 = w90 = 1.0
        else:  # a late event counts with its own decay to t_ref
            w30 = 2.0 ** (dt / H30)
            w90 = 2.0 ** (dt / H90)
        if etype == SESSION_START:
            st[1] += w30
        elif etype == PAGE_VIEW:
            st[2] += w30
        elif etype == PURCHASE:
            st[3] += w90
            if amount > 0:
                st[4] += amount * w90
        if etype != REFUND and etype != SUBSCRIPTION_CANCEL:
            if t > st[6]:
                st[6] = t
            if t < st[5]:
                st[5] = t
        x = (log1p(st[1]), log1p(st[2]), log1p(st[3]), log1p(st[4]),
             (st[0] - st[6]) / DAY_MS, (st[0] - st[5]) / DAY_MS)
        check += x[0]
    return time.perf_counter() - t0, len(states), check

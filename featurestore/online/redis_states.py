"""Aggregation state updates on Redis (and Redis Cluster): read, merge, compare-and-set.

A key's state is read with the lookups' ``MGET`` path, the new state is computed in Python, and
a script stores it only if the state's generation (8 random bytes after the row header, see
:mod:`featurestore.online.aggregation_state`) is still the one read; the keys another writer
changed in between are read and merged again. One key's state is one Redis key, so on a cluster
it lives in one slot (its hash tag is the entity key) and a script call takes one slot's keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from featurestore.errors import OnlineStoreError
from featurestore.online.aggregation_state import GENERATION_END
from featurestore.online.base import Namespace, StateUpdate
from featurestore.online.codec import HEADER_END

if TYPE_CHECKING:
    from featurestore.online.redis_store import RedisOnlineStore

# KEYS: state keys. ARGV, three per key: the generation read ("" when nothing was stored), the
# new state, its PXAT (epoch ms; "0": no expiry). Returns, per key, 1 if it was set.
COMPARE_AND_SET = f"""
local done = {{}}
for i = 1, #KEYS do
  done[i] = 0
  if redis.call('GETRANGE', KEYS[i], {HEADER_END}, {GENERATION_END - 1}) == ARGV[3 * i - 2] then
    local at = ARGV[3 * i]
    if at == '0' then
      redis.call('SET', KEYS[i], ARGV[3 * i - 1])
    else
      redis.call('SET', KEYS[i], ARGV[3 * i - 1], 'PXAT', at)
    end
    done[i] = 1
  end
end
return done
"""

#: Rounds of read-merge-set before giving up on keys that keep changing under us.
_ATTEMPTS = 20


def update_states(
    store: RedisOnlineStore,
    namespace: Namespace,
    entity_keys: Sequence[bytes],
    update: StateUpdate,
    script: Any,
) -> int:
    """See :meth:`featurestore.online.base.SupportsStateUpdates.update_states`."""
    wanted = list(dict.fromkeys(entity_keys))
    written = 0
    with store._errors(f"updating {namespace.view.label}"):
        for _ in range(_ATTEMPTS):
            if not wanted:
                return written
            keys = store._packed_keys([(namespace, wanted)])
            stored = store._mget(keys)
            calls: list[tuple[list[bytes], list[Any]]] = []
            positions: list[list[int]] = []
            for group in store._same_slot_groups(keys):
                for start in range(0, len(group), store.chunk_size):
                    call_keys: list[bytes] = []
                    args: list[Any] = []
                    chosen: list[int] = []
                    for i in group[start : start + store.chunk_size]:
                        new = update(wanted[i], stored[i])
                        if new is None:
                            continue
                        old = stored[i]
                        call_keys.append(keys[i])
                        at = new.expires_at_us(store.expiry_grace)
                        args += [
                            b"" if old is None else old[HEADER_END:GENERATION_END],
                            new.value,
                            b"0" if at is None else str(-(-at // 1000)).encode(),
                        ]
                        chosen.append(i)
                    if call_keys:
                        calls.append((call_keys, args))
                        positions.append(chosen)
            results = store._run_script(script, calls) if calls else []
            retry: list[bytes] = []
            for chosen, flags in zip(positions, results, strict=True):
                for i, flag in zip(chosen, flags, strict=True):
                    if int(flag):
                        written += 1
                    else:
                        retry.append(wanted[i])
            wanted = retry
    if wanted:
        raise OnlineStoreError(
            f"Redis at {store.shown_url}: the state of {len(wanted)} key(s) of "
            f"{namespace.view.label} kept changing during {_ATTEMPTS} attempts to update it; "
            "retry the write"
        )
    return written

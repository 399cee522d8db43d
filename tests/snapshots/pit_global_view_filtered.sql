WITH
__fs_v0_src AS (
  SELECT epoch_us(CAST("event_timestamp" AS TIMESTAMPTZ)) AS __fs_ets, file_row_number AS __fs_pos, "temperature" AS __fs_f0
  FROM read_parquet(['/repo/data/weather.parquet'], file_row_number = true)
  WHERE "event_timestamp" IS NOT NULL AND "event_timestamp" >= CAST(make_timestamp(1704063599999999::BIGINT) AS TIMESTAMP WITH TIME ZONE) AND "event_timestamp" <= CAST(make_timestamp(1706659200000001::BIGINT) AS TIMESTAMP WITH TIME ZONE)
),
__fs_v0_ent AS (
  SELECT e.__fs_row, e.__fs_ts, e.__fs_ts // 14400000000 - s.__fs_d AS __fs_bucket
  FROM __fs_entity_0 AS e CROSS JOIN (VALUES (0), (1)) AS s(__fs_d)
  WHERE e.__fs_ts IS NOT NULL AND (s.__fs_d = 0 OR (e.__fs_ts - 3600000000) // 14400000000 < e.__fs_ts // 14400000000)
),
__fs_v0 AS (
  SELECT e.__fs_row, arg_max(struct_pack(f.__fs_f0), struct_pack(f.__fs_ets, f.__fs_pos)) AS __fs_val
  FROM __fs_v0_ent AS e JOIN __fs_v0_src AS f ON f.__fs_ets // 14400000000 = e.__fs_bucket
  WHERE f.__fs_ets <= e.__fs_ts AND f.__fs_ets >= e.__fs_ts - 3600000000
  GROUP BY e.__fs_row
)
SELECT
  e."driver_id",
  e."city",
  e."trip_no",
  e."event_timestamp",
  CAST(v0.__fs_val.__fs_f0 AS FLOAT) AS "weather__temperature"
FROM __fs_entity_0 AS e
LEFT JOIN __fs_v0 AS v0 ON v0.__fs_row = e.__fs_row
ORDER BY e.__fs_row

WITH
__fs_v0_src AS (
  SELECT CAST("driver_id" AS BIGINT) AS __fs_k0, epoch_us(CAST("event_timestamp" AS TIMESTAMPTZ)) AS __fs_ets, file_index AS __fs_file, file_row_number AS __fs_pos, "signup" AS __fs_f0
  FROM read_parquet(['/repo/data/profile/part-0.parquet', '/repo/data/profile/part-1.parquet'], file_row_number = true, union_by_name = true)
  WHERE "event_timestamp" IS NOT NULL AND "driver_id" IS NOT NULL AND "event_timestamp" <= CAST(make_timestamp(1706659200000001::BIGINT) AS TIMESTAMP WITH TIME ZONE)
),
__fs_v0_ent AS (
  SELECT e.__fs_row, e.__fs_ts, CAST(e."driver_id" AS BIGINT) AS __fs_k0
  FROM __fs_entity_0 AS e
  WHERE e.__fs_ts IS NOT NULL AND e."driver_id" IS NOT NULL
),
__fs_v0_latest AS (
  SELECT __fs_k0, __fs_ets, arg_max(struct_pack(f.__fs_f0), struct_pack(f.__fs_file, f.__fs_pos)) AS __fs_val
  FROM __fs_v0_src AS f
  GROUP BY __fs_k0, __fs_ets
),
__fs_v0 AS (
  SELECT e.__fs_row, f.__fs_val
  FROM __fs_v0_ent AS e ASOF JOIN __fs_v0_latest AS f ON f.__fs_k0 = e.__fs_k0 AND e.__fs_ts >= f.__fs_ets
)
SELECT
  e."driver_id",
  e."city",
  e."trip_no",
  e."event_timestamp",
  to_timestamp(v0.__fs_val.__fs_f0) AS "driver_profile__signup"
FROM __fs_entity_0 AS e
LEFT JOIN __fs_v0 AS v0 ON v0.__fs_row = e.__fs_row
ORDER BY e.__fs_row

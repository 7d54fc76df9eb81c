-- The counts of kafka_counts.sql, from the same Kafka source, into an Iceberg table of
-- the embedded catalog.
CREATE SINK counts_table WITH (connector = 'iceberg', table = 'counts') AS
SELECT auction, window_start, window_end, COUNT(*) AS n
FROM TUMBLE(bids, date_time, INTERVAL '1' SECOND)
GROUP BY auction, window_start, window_end;

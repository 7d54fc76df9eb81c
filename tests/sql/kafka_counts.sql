-- Bids from a Kafka topic, counted per auction in 1 s windows into another Kafka
-- topic, keyed by auction. {bootstrap} is filled in by the test.
CREATE SOURCE bids (
    auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR,
    date_time TIMESTAMP(3), extra VARCHAR,
    WATERMARK FOR date_time AS date_time - INTERVAL '2' SECOND
) WITH (
    connector = 'kafka', topic = 'bids', bootstrap.servers = '{bootstrap}',
    scan.startup.mode = 'earliest', 'source.idle-timeout-ms' = '1000'
);
CREATE SINK counts WITH (
    connector = 'kafka', topic = 'counts', bootstrap.servers = '{bootstrap}',
    key.fields = 'auction'
) AS SELECT auction, window_start, window_end, COUNT(*) AS n
FROM TUMBLE(bids, date_time, INTERVAL '1' SECOND)
GROUP BY auction, window_start, window_end;

-- Nexmark q5 (hot items) from a Kafka topic of JSON bids into a Kafka topic, exactly
-- once. Replace localhost:9092 with your brokers; the topics must exist
-- (bids with any number of partitions; hot_items keyed by auction).
CREATE SOURCE bids (
    auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR,
    date_time TIMESTAMP(3), extra VARCHAR,
    kafka_offset BIGINT METADATA FROM 'offset',
    WATERMARK FOR date_time AS date_time - INTERVAL '5' SECOND
) WITH (
    connector = 'kafka', topic = 'bids', bootstrap.servers = 'localhost:9092',
    scan.startup.mode = 'earliest', 'bad-records' = 'skip',
    'source.idle-timeout-ms' = '10000'
);

CREATE SINK hot_items WITH (
    connector = 'kafka', topic = 'hot_items', bootstrap.servers = 'localhost:9092',
    key.fields = 'auction'
) AS
SELECT AuctionBids.auction, AuctionBids.num
FROM (
    SELECT auction, COUNT(*) AS num, window_start AS starttime, window_end AS endtime
    FROM HOP(bids, date_time, INTERVAL '2' SECOND, INTERVAL '10' SECOND)
    GROUP BY auction, window_start, window_end
) AS AuctionBids
JOIN (
    SELECT MAX(CountBids.num) AS maxn, CountBids.starttime, CountBids.endtime
    FROM (
        SELECT COUNT(*) AS num, window_start AS starttime, window_end AS endtime
        FROM HOP(bids, date_time, INTERVAL '2' SECOND, INTERVAL '10' SECOND)
        GROUP BY auction, window_start, window_end
    ) AS CountBids
    GROUP BY CountBids.starttime, CountBids.endtime
) AS MaxBids
ON AuctionBids.starttime = MaxBids.starttime
   AND AuctionBids.endtime = MaxBids.endtime
   AND AuctionBids.num >= MaxBids.maxn;

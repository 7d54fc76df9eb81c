-- TUMBLE with keys: COUNT, SUM, MIN, MAX, AVG, a WHERE before and an expression after
-- the aggregate, over disordered bids in two log partitions.
-- input bids: nexmark seed=11 rate=1000 events=30000 disorder=200
CREATE SOURCE bids (
    auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR,
    date_time TIMESTAMP(3), extra VARCHAR,
    WATERMARK FOR date_time AS date_time - INTERVAL '2' SECOND
) WITH (connector = 'log', topic = 'bids', partitions = '2');

CREATE SINK auction_stats AS
SELECT auction, window_start, window_end,
       COUNT(*) AS bids, SUM(price) AS total, MIN(price) AS lo, MAX(price) AS hi,
       AVG(price) AS mean, MAX(price) - MIN(price) AS spread
FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
WHERE price > 100
GROUP BY auction, window_start, window_end;
-- oracle
SELECT auction, w AS window_start, w + 10000 AS window_end,
       COUNT(*) AS bids, SUM(price) AS total, MIN(price) AS lo, MAX(price) AS hi,
       AVG(price) AS mean, MAX(price) - MIN(price) AS spread
FROM (SELECT auction, price, CAST(date_time AS BIGINT) / 10000 * 10000 AS w
      FROM bids WHERE price > 100) t
GROUP BY auction, w

-- CUMULATE (windows growing by 2 s up to 10 s): bids and revenue so far per auction,
-- over disordered bids in two log partitions.
-- input bids: nexmark seed=23 rate=1000 events=20000 disorder=100
CREATE SOURCE bids (
    auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR,
    date_time TIMESTAMP(3), extra VARCHAR,
    WATERMARK FOR date_time AS date_time - INTERVAL '1' SECOND
) WITH (connector = 'log', topic = 'bids', partitions = '2');

CREATE SINK revenue_so_far AS
SELECT auction, window_start, window_end, COUNT(*) AS bids, SUM(price) AS revenue
FROM CUMULATE(bids, date_time, INTERVAL '2' SECOND, INTERVAL '10' SECOND)
GROUP BY auction, window_start, window_end;
-- oracle
WITH t AS (SELECT auction, price, CAST(date_time AS BIGINT) AS ts FROM bids),
     w AS (SELECT auction, price, ts, ts / 10000 * 10000 AS window_start,
                  ts / 10000 * 10000 + k * 2000 AS window_end
           FROM t CROSS JOIN (VALUES (1), (2), (3), (4), (5)) AS o(k))
SELECT auction, window_start, window_end, COUNT(*) AS bids, SUM(price) AS revenue
FROM w WHERE window_end > ts
GROUP BY auction, window_start, window_end

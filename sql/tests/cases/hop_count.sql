-- HOP (10 s windows every 2 s): bids per auction, and a count of distinct-looking
-- values through COUNT(column).
-- input bids: nexmark seed=5 rate=1000 events=20000 disorder=100
CREATE SOURCE bids (
    auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR,
    date_time TIMESTAMP(3), extra VARCHAR,
    WATERMARK FOR date_time AS date_time - INTERVAL '1' SECOND
) WITH (connector = 'log', topic = 'bids', partitions = '2');

CREATE SINK hop_counts AS
SELECT auction, window_start, window_end, COUNT(*) AS bids, COUNT(bidder) AS bidders
FROM HOP(bids, date_time, INTERVAL '2' SECOND, INTERVAL '10' SECOND)
GROUP BY auction, window_start, window_end;
-- oracle
WITH t AS (SELECT auction, bidder, CAST(date_time AS BIGINT) AS ts FROM bids),
     w AS (SELECT auction, bidder, (ts / 2000 - k) * 2000 AS window_start
           FROM t CROSS JOIN (VALUES (0), (1), (2), (3), (4)) AS o(k))
SELECT auction, window_start, window_end, bids, bidders FROM (
  SELECT auction, window_start, window_start + 10000 AS window_end,
         COUNT(*) AS bids, COUNT(bidder) AS bidders
  FROM w GROUP BY auction, window_start) c
WHERE window_start >= 0

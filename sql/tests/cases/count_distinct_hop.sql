-- COUNT(DISTINCT) without keys over HOP windows: auctions with bids and bidders per
-- window, each row of a distinct value counted in every window it falls into.
-- input bids: nexmark seed=22 rate=1000 events=20000 disorder=200
CREATE SOURCE bids (
    auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR,
    date_time TIMESTAMP(3), extra VARCHAR,
    WATERMARK FOR date_time AS date_time - INTERVAL '2' SECOND
) WITH (connector = 'log', topic = 'bids', partitions = '2');

CREATE SINK active_auctions AS
SELECT window_start, window_end, COUNT(DISTINCT auction) AS auctions, COUNT(*) AS bids
FROM HOP(bids, date_time, INTERVAL '2' SECOND, INTERVAL '10' SECOND)
GROUP BY window_start, window_end;
-- oracle
WITH t AS (SELECT auction, CAST(date_time AS BIGINT) AS ts FROM bids),
     w AS (SELECT auction, (ts / 2000 - k) * 2000 AS ws
           FROM t CROSS JOIN (VALUES (0), (1), (2), (3), (4)) AS o(k))
SELECT ws AS window_start, ws + 10000 AS window_end,
       COUNT(DISTINCT auction) AS auctions, COUNT(*) AS bids
FROM w GROUP BY ws

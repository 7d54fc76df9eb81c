-- Nexmark q5 as written in the Nexmark suite: the auctions with the most bids in every
-- 10 s window sliding by 2 s, as the count per auction and window joined with the
-- maximum count of the window (ties all kept). Both sides read the same source.
-- input bids: nexmark seed=7 rate=2000 events=30000 disorder=300
-- windows: 2
CREATE SOURCE bids (
    auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR,
    date_time TIMESTAMP(3), extra VARCHAR,
    WATERMARK FOR date_time AS date_time - INTERVAL '2' SECOND
) WITH (connector = 'log', topic = 'bids', partitions = '2');

CREATE SINK q5 AS
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
-- oracle
WITH t AS (SELECT auction, CAST(date_time AS BIGINT) AS ts FROM bids),
     w AS (SELECT auction, (ts / 2000 - k) * 2000 AS ws
           FROM t CROSS JOIN (VALUES (0), (1), (2), (3), (4)) AS o(k)),
     c AS (SELECT auction, ws, COUNT(*) AS num FROM w GROUP BY auction, ws),
     m AS (SELECT ws, MAX(num) AS maxn FROM c GROUP BY ws)
SELECT c.auction, c.num FROM c JOIN m ON c.ws = m.ws WHERE c.num >= m.maxn

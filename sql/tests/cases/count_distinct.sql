-- COUNT(DISTINCT) next to every other aggregate, per auction in TUMBLE windows: split
-- in two levels (per auction and bidder, then per auction), with nulls in the distinct
-- column (bidders of even auctions are dropped by a CASE).
-- input bids: nexmark seed=21 rate=1000 events=20000 disorder=200
-- windows: 2
CREATE SOURCE bids (
    auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR,
    date_time TIMESTAMP(3), extra VARCHAR,
    WATERMARK FOR date_time AS date_time - INTERVAL '2' SECOND
) WITH (connector = 'log', topic = 'bids', partitions = '2');

CREATE SINK auction_bidders AS
SELECT auction, window_start, window_end,
       COUNT(*) AS bids,
       COUNT(DISTINCT CASE WHEN auction % 2 = 1 THEN bidder END) AS bidders,
       COUNT(price) AS priced, SUM(price) AS total, MIN(price) AS lo, MAX(price) AS hi,
       AVG(price) AS mean
FROM TUMBLE(bids, date_time, INTERVAL '10' SECOND)
GROUP BY auction, window_start, window_end;
-- oracle
SELECT auction, w AS window_start, w + 10000 AS window_end,
       COUNT(*) AS bids,
       COUNT(DISTINCT CASE WHEN auction % 2 = 1 THEN bidder END) AS bidders,
       COUNT(price) AS priced, SUM(price) AS total, MIN(price) AS lo, MAX(price) AS hi,
       AVG(price) AS mean
FROM (SELECT auction, bidder, price, CAST(date_time AS BIGINT) / 10000 * 10000 AS w
      FROM bids) t
GROUP BY auction, w

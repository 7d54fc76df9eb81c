-- Top-N per window (Nexmark q5 "hot items" as a ranking): the three auctions with the
-- most bids in every 10 s window sliding by 2 s, ties broken by auction id.
-- input bids: nexmark seed=42 rate=2000 events=40000 disorder=300
CREATE SOURCE bids (
    auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR,
    date_time TIMESTAMP(3), extra VARCHAR,
    WATERMARK FOR date_time AS date_time - INTERVAL '2' SECOND
) WITH (connector = 'log', topic = 'bids', partitions = '2');

CREATE SINK hot_items WITH (connector = 'log', topic = 'hot_items') AS
SELECT * FROM (
    SELECT auction, window_start, window_end, num,
           ROW_NUMBER() OVER (PARTITION BY window_start, window_end
                              ORDER BY num DESC, auction ASC) AS rn
    FROM (
        SELECT auction, window_start, window_end, COUNT(*) AS num
        FROM HOP(bids, date_time, INTERVAL '2' SECOND, INTERVAL '10' SECOND)
        GROUP BY auction, window_start, window_end
    )
) WHERE rn <= 3;
-- oracle
WITH t AS (SELECT auction, CAST(date_time AS BIGINT) AS ts FROM bids),
     w AS (SELECT auction, (ts / 2000 - k) * 2000 AS window_start
           FROM t CROSS JOIN (VALUES (0), (1), (2), (3), (4)) AS o(k)),
     c AS (SELECT auction, window_start, window_start + 10000 AS window_end, COUNT(*) AS num
           FROM w GROUP BY auction, window_start),
     r AS (SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start
                                        ORDER BY num DESC, auction ASC) AS rn FROM c)
SELECT auction, window_start, window_end, num, rn FROM r WHERE rn <= 3

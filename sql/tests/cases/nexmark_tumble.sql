-- A Nexmark source (columns and watermark implied by the generator): bids and volume
-- per 2 s tumbling window over all auctions, with a HAVING on the aggregate.
CREATE SOURCE bid WITH (
    connector = 'nexmark', type = 'bid', rate = '1000', seed = '3',
    max_events = '20000', partitions = '2'
);

CREATE SINK volume AS
SELECT window_start, window_end, COUNT(*) AS bids, SUM(price) AS volume,
       SUM(price) / COUNT(*) AS average_price
FROM TUMBLE(bid, date_time, INTERVAL '2' SECOND)
GROUP BY window_start, window_end
HAVING COUNT(*) > 10;
-- oracle
SELECT w AS window_start, w + 2000 AS window_end, COUNT(*) AS bids, SUM(price) AS volume,
       SUM(price) / COUNT(*) AS average_price
FROM (SELECT price, CAST(date_time AS BIGINT) / 2000 * 2000 AS w FROM bid) t
GROUP BY w
HAVING COUNT(*) > 10

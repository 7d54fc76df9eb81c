-- A stateless query: WHERE and computed columns, no window.
-- input bids: nexmark seed=3 rate=1000 events=5000 disorder=50
CREATE SOURCE bids (
    auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR,
    date_time TIMESTAMP(3), extra VARCHAR,
    WATERMARK FOR date_time AS date_time - INTERVAL '1' SECOND
) WITH (connector = 'log', topic = 'bids', partitions = '2');

CREATE SINK cheap_bids WITH (connector = 'log', topic = 'cheap_bids') AS
SELECT b.auction, price * 908 / 1000 AS price_eur, upper(channel) AS channel_name,
       CASE WHEN price < 1000 THEN 'low' ELSE 'high' END AS band, date_time
FROM bids AS b
WHERE price % 3 = 0 AND channel <> 'Apple' AND bidder > 1000;
-- oracle
SELECT auction, price * 908 / 1000 AS price_eur, upper(channel) AS channel_name,
       CASE WHEN price < 1000 THEN 'low' ELSE 'high' END AS band, date_time
FROM bids
WHERE price % 3 = 0 AND channel <> 'Apple' AND bidder > 1000

-- Target schema of the nine-to-three content consolidation.
-- tableshift reads this with a PostgreSQL parser to check that rewritten calls
-- only use columns the targets have, and that inserts give every NOT NULL
-- column without a default.

CREATE TABLE content_queue (
  id                  bigserial PRIMARY KEY,
  decision_id         uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
  content             text NOT NULL,
  decision_type       text NOT NULL DEFAULT 'single'
                      CHECK (decision_type IN ('single', 'thread', 'reply')),
  thread_parts        jsonb,
  raw_topic           text,
  angle               text,
  tone                text,
  generator_name      text,
  format_strategy     text,
  visual_format       text,
  status              text NOT NULL DEFAULT 'queued'
                      CHECK (status IN ('queued', 'ready', 'posting', 'posted', 'failed', 'cancelled')),
  scheduled_at        timestamptz,
  posted_at           timestamptz,
  tweet_id            text,
  tweet_url           text,
  quality_score       numeric,
  predicted_er        numeric,
  predicted_likes     integer,
  predicted_followers integer,
  target_tweet_id     text,
  target_username     text,
  bandit_arm          text,
  timing_arm          text,
  hook_type           text,
  metadata            jsonb NOT NULL DEFAULT '{}'::jsonb,
  features            jsonb,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE posted_content (
  id               bigserial PRIMARY KEY,
  decision_id      uuid NOT NULL UNIQUE REFERENCES content_queue (decision_id),
  tweet_id         text NOT NULL UNIQUE,
  tweet_url        text,
  content          text NOT NULL,
  decision_type    text NOT NULL DEFAULT 'single',
  thread_parts     jsonb,
  generator_name   text,
  raw_topic        text,
  angle            text,
  tone             text,
  format_strategy  text,
  visual_format    text,
  target_tweet_id  text,
  target_username  text,
  bandit_arm       text,
  timing_arm       text,
  hook_type        text,
  quality_score    numeric,
  predicted_er     numeric,
  posted_at        timestamptz NOT NULL DEFAULT now(),
  created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE engagement_metrics (
  id               bigserial PRIMARY KEY,
  decision_id      uuid REFERENCES posted_content (decision_id),
  tweet_id         text NOT NULL,
  likes            integer NOT NULL DEFAULT 0,
  retweets         integer NOT NULL DEFAULT 0,
  replies          integer NOT NULL DEFAULT 0,
  bookmarks        integer NOT NULL DEFAULT 0,
  quotes           integer NOT NULL DEFAULT 0,
  quote_tweets     integer NOT NULL DEFAULT 0,
  impressions      integer NOT NULL DEFAULT 0,
  views            integer NOT NULL DEFAULT 0,
  profile_clicks   integer NOT NULL DEFAULT 0,
  url_clicks       integer NOT NULL DEFAULT 0,
  detail_expands   integer NOT NULL DEFAULT 0,
  engagement_rate  numeric,
  viral_score      numeric,
  followers_before integer,
  followers_after  integer,
  followers_gained integer,
  collected_at     timestamptz NOT NULL DEFAULT now(),
  collected_pass   smallint NOT NULL DEFAULT 0
                   CHECK (collected_pass BETWEEN 0 AND 3),  -- 1 = T+1h, 2 = T+24h, 3 = T+7d
  data_source      text,
  created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX engagement_metrics_tweet_pass ON engagement_metrics (tweet_id, collected_pass, collected_at DESC);

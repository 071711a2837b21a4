-- name: login_blocked_for
-- The check before a password is looked at: how many whole seconds until every block on
-- these subjects (the account and the client address) has ended; NULL when none is blocked.
SELECT ceil(extract(epoch FROM max(blocked_until) - now()))::integer AS wait_seconds
FROM relay.login_throttle
WHERE subject = ANY(%(subjects)b::text[]) AND blocked_until > now();

-- name: count_login_failure
-- Count one failed login against each subject, atomically (concurrent API processes each
-- add theirs), and return the state. A subject whose window has passed starts a new count;
-- one that reaches its limit is blocked for the window times 2 to the power of its earlier
-- strikes (capped), and its count starts again. Strikes are forgotten after a quiet spell.
-- Rows are locked in subject order, so two attempts never wait on each other in a cycle.
WITH attempt AS (
    SELECT subject,
           CASE WHEN starts_with(subject, 'address:') THEN %(address_limit)s::integer
                ELSE %(account_limit)s::integer END AS max_failures
    FROM unnest(%(subjects)b::text[]) AS subject
    ORDER BY subject
)
INSERT INTO relay.login_throttle AS t (subject, failures, window_started, blocked_until, strikes, updated_at)
SELECT subject,
       CASE WHEN max_failures <= 1 THEN 0 ELSE 1 END,
       now(),
       CASE WHEN max_failures <= 1 THEN now() + make_interval(secs => %(window)s) END,
       CASE WHEN max_failures <= 1 THEN 1 ELSE 0 END,
       now()
FROM attempt
ON CONFLICT (subject) DO UPDATE SET (failures, window_started, blocked_until, strikes, updated_at) = (
    SELECT CASE WHEN verdict.reached THEN 0 ELSE now_counted.counted END,
           CASE WHEN verdict.reached OR was.fresh THEN now() ELSE t.window_started END,
           CASE WHEN verdict.reached
                THEN now() + least(make_interval(secs => %(window)s * power(2, least(was.strikes, 30))),
                                   make_interval(secs => greatest(%(max_block)s, %(window)s)))
                ELSE t.blocked_until END,
           was.strikes + CASE WHEN verdict.reached THEN 1 ELSE 0 END,
           now()
    FROM (SELECT t.window_started <= now() - make_interval(secs => %(window)s) AS fresh,
                 CASE WHEN t.updated_at < now() - make_interval(secs => %(forget_strikes)s) THEN 0
                      ELSE t.strikes END AS strikes,
                 CASE WHEN starts_with(t.subject, 'address:') THEN %(address_limit)s::integer
                      ELSE %(account_limit)s::integer END AS max_failures) AS was,
         LATERAL (SELECT CASE WHEN was.fresh THEN 1 ELSE t.failures + 1 END AS counted) AS now_counted,
         LATERAL (SELECT now_counted.counted >= was.max_failures AS reached) AS verdict
)
RETURNING subject, failures, strikes,
          failures = 0 AS blocked_now,
          ceil(extract(epoch FROM blocked_until - now()))::integer AS wait_seconds;

-- name: forget_login_failures
-- A successful login: the account's count starts again (its strikes stay, and fade with time).
UPDATE relay.login_throttle SET failures = 0
WHERE subject = %(subject)s AND failures > 0;

-- name: delete_old_login_throttle
-- Subjects quiet for longer than any of their state matters (no block running).
DELETE FROM relay.login_throttle
WHERE updated_at < now() - make_interval(secs => %(keep)s)
  AND (blocked_until IS NULL OR blocked_until < now());

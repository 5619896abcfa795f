-- A login's nick, password token, channel-key token and channel list move from the key/value
-- table (irc:nick:<login id>, irc:pass:, irc:keys:, irc:channels:) to the login's typed
-- metadata (state.py, IRCLoginMeta version 1). Secrets stay the encrypted tokens they were.
-- Every other irc: key (the "sent" progress markers) moves under the network's own prefix.
-- only: sqlite
UPDATE user_login SET net_metadata_v = 1, net_metadata = json_object(
    'nick', (SELECT value FROM kv WHERE key = 'irc:nick:' || user_login.id),
    'password', (SELECT value FROM kv WHERE key = 'irc:pass:' || user_login.id),
    'channel_keys', (SELECT value FROM kv WHERE key = 'irc:keys:' || user_login.id),
    'channels', json(COALESCE(
        (SELECT value FROM kv WHERE key = 'irc:channels:' || user_login.id
            AND json_valid(value)),
        '[]'))
) WHERE network = 'irc';
-- end only
-- only: postgres
UPDATE user_login SET net_metadata_v = 1, net_metadata = json_build_object(
    'nick', (SELECT value FROM kv WHERE key = 'irc:nick:' || user_login.id),
    'password', (SELECT value FROM kv WHERE key = 'irc:pass:' || user_login.id),
    'channel_keys', (SELECT value FROM kv WHERE key = 'irc:keys:' || user_login.id),
    'channels', COALESCE(
        (SELECT value FROM kv WHERE key = 'irc:channels:' || user_login.id), '[]')::json
)::text WHERE network = 'irc';
-- end only
DELETE FROM kv WHERE substr(key, 1, 9) IN ('irc:nick:', 'irc:pass:', 'irc:keys:')
    OR substr(key, 1, 13) = 'irc:channels:';
UPDATE kv SET key = 'net:irc:' || key WHERE substr(key, 1, 4) = 'irc:';

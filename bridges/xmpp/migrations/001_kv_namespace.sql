-- Each network's key/value keys now live under its own prefix (the runtime adds net:<network>:
-- to what a connector asks for): the xmpp: keys stored before move there, and a login's rooms
-- (xmpp:rooms:<login id>) move to the login's typed metadata (XMPPLoginMeta version 1).
-- only: sqlite
UPDATE user_login SET net_metadata_v = 1, net_metadata = json_object(
    'rooms', json(COALESCE(
        (SELECT value FROM kv WHERE key = 'xmpp:rooms:' || user_login.id
            AND json_valid(value) AND json_type(value) = 'object'),
        '{}'))
) WHERE network = 'xmpp';
-- end only
-- only: postgres
UPDATE user_login SET net_metadata_v = 1, net_metadata = json_build_object(
    'rooms', COALESCE(
        (SELECT value FROM kv WHERE key = 'xmpp:rooms:' || user_login.id), '{}')::json
)::text WHERE network = 'xmpp';
-- end only
DELETE FROM kv WHERE substr(key, 1, 11) = 'xmpp:rooms:';
UPDATE kv SET key = 'net:xmpp:' || key WHERE substr(key, 1, 5) = 'xmpp:';

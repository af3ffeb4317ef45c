-- +goose Up
-- The timestamp as the client's clock said, kept beside the corrected one
-- when the event carried sent_at (device clock skew). NULL for rows stored
-- before this column existed.
ALTER TABLE events ADD COLUMN client_timestamp timestamptz;

-- An object is public (a share image under /files/) or private (a photo
-- read only through the uploads route): one key per visibility, as in the
-- two directories beside a sled store.
ALTER TABLE objects ADD COLUMN public boolean NOT NULL DEFAULT false;
ALTER TABLE objects DROP CONSTRAINT objects_pkey;
ALTER TABLE objects ADD PRIMARY KEY (public, key);

"""The Matrix side: the appservice HTTP surface, the client, where each Matrix event goes, media."""

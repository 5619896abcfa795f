"""Portals: rooms, ghosts and puppets, remote events to Matrix and Matrix events to the network."""

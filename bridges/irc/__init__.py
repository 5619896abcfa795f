"""IRC connector for bridgekit."""

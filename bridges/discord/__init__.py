"""The Discord connector: guilds through a bot, people through their own accounts."""

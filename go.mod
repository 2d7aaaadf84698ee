module github.com/mattermost-community/mattermost-plugin-bridge

go 1.26.8

require github.com/mattermost/mattermost/server/public v0.4.4 // indirect

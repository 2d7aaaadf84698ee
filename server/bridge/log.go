package bridge

// Logger is the structured logger the core writes to. keyValuePairs
// alternate keys (strings) and values, as in Mattermost's plugin API.
type Logger interface {
	Debug(msg string, keyValuePairs ...any)
	Info(msg string, keyValuePairs ...any)
	Warn(msg string, keyValuePairs ...any)
	Error(msg string, keyValuePairs ...any)
}

// PluginLogger is the logging part of Mattermost's plugin API
// (plugin.API has exactly these methods).
type PluginLogger interface {
	LogDebug(msg string, keyValuePairs ...any)
	LogInfo(msg string, keyValuePairs ...any)
	LogWarn(msg string, keyValuePairs ...any)
	LogError(msg string, keyValuePairs ...any)
}

// PluginLoggerAdapter turns a PluginLogger (e.g. the plugin API) into a Logger.
type PluginLoggerAdapter struct {
	API PluginLogger
}

// NewPluginLogger wraps api as a Logger; a nil api gives a NopLogger.
func NewPluginLogger(api PluginLogger) Logger {
	if api == nil {
		return NopLogger{}
	}
	return PluginLoggerAdapter{API: api}
}

func (l PluginLoggerAdapter) Debug(msg string, kv ...any) { l.API.LogDebug(msg, kv...) }
func (l PluginLoggerAdapter) Info(msg string, kv ...any)  { l.API.LogInfo(msg, kv...) }
func (l PluginLoggerAdapter) Warn(msg string, kv ...any)  { l.API.LogWarn(msg, kv...) }
func (l PluginLoggerAdapter) Error(msg string, kv ...any) { l.API.LogError(msg, kv...) }

// NopLogger discards everything.
type NopLogger struct{}

func (NopLogger) Debug(string, ...any) {}
func (NopLogger) Info(string, ...any)  {}
func (NopLogger) Warn(string, ...any)  {}
func (NopLogger) Error(string, ...any) {}

func orNop(l Logger) Logger {
	if l == nil {
		return NopLogger{}
	}
	return l
}

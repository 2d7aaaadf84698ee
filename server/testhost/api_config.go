package testhost

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
	"github.com/mattermost/mattermost/server/public/shared/mlog"
)

// LoadPluginConfiguration unmarshals the plugin's settings into dest like
// the server: the defaults of the manifest's top-level settings (not those
// in sections, exactly as the server does), overridden by the stored
// settings, keys lower-cased, JSON round-tripped into dest.
func (a *API) LoadPluginConfiguration(dest any) error {
	final := map[string]any{}
	if m := a.getManifest(); m.SettingsSchema != nil {
		for _, setting := range m.SettingsSchema.Settings {
			if setting != nil {
				final[strings.ToLower(setting.Key)] = setting.Default
			}
		}
	}
	a.s.mu.RLock()
	for k, v := range a.s.st.config.PluginSettings.Plugins[a.pluginID] {
		final[strings.ToLower(k)] = copyValue(v)
	}
	a.s.mu.RUnlock()
	b, err := json.Marshal(final)
	if err != nil {
		a.LogError("Error marshaling config for plugin", "err", err.Error())
		return nil
	}
	if err := json.Unmarshal(b, dest); err != nil {
		a.LogError("Error unmarshaling config for plugin", "err", err.Error())
	}
	return nil
}

func (s *Server) sanitizedConfig() *model.Config {
	manifests := s.manifestList()
	s.mu.RLock()
	cfg := s.st.config.Clone()
	s.mu.RUnlock()
	cfg.Sanitize(manifests, nil)
	return cfg
}

// GetConfig returns the configuration sanitized like the server does:
// secrets, including plugin settings marked secret, are replaced by
// model.FakeSetting.
func (a *API) GetConfig() *model.Config { return a.s.sanitizedConfig() }

// GetUnsanitizedConfig returns the configuration with its secrets.
func (a *API) GetUnsanitizedConfig() *model.Config { return a.s.Config() }

// SaveConfig stores a configuration (values equal to model.FakeSetting keep
// their stored value, as on the server) and, if it changed, fires
// OnConfigurationChange: synchronously on this node, asynchronously on the
// others.
func (a *API) SaveConfig(cfg *model.Config) *model.AppError {
	if cfg == nil {
		return badRequest("SaveConfig", "api.config.update_config.invalid_body.app_error", "config is nil")
	}
	newCfg := cfg.Clone()
	a.s.mu.Lock()
	desanitize(a.s.st.config, newCfg)
	if err := newCfg.IsValid(); err != nil {
		a.s.mu.Unlock()
		return err
	}
	changed := !reflect.DeepEqual(a.s.st.config, newCfg)
	a.s.st.config = newCfg
	a.s.mu.Unlock()
	if changed {
		_ = a.s.fireConfigurationChange(a.n, true)
	}
	return nil
}

// GetPluginConfig returns the plugin's stored settings, sanitized like
// GetConfig.
func (a *API) GetPluginConfig() map[string]any {
	cfg := a.s.sanitizedConfig()
	if pc, ok := cfg.PluginSettings.Plugins[a.pluginID]; ok && pc != nil {
		return pc
	}
	return map[string]any{}
}

// SavePluginConfig replaces the plugin's settings (values equal to
// model.FakeSetting keep their stored value) and, if they changed, fires
// OnConfigurationChange: synchronously on this node, asynchronously on the
// others.
func (a *API) SavePluginConfig(pluginConfig map[string]any) *model.AppError {
	a.s.mu.Lock()
	newCfg := a.s.st.config.Clone()
	if newCfg.PluginSettings.Plugins == nil {
		newCfg.PluginSettings.Plugins = map[string]map[string]any{}
	}
	newCfg.PluginSettings.Plugins[a.pluginID] = copyValue(maps.Clone(pluginConfig)).(map[string]any)
	desanitize(a.s.st.config, newCfg)
	changed := !reflect.DeepEqual(a.s.st.config, newCfg)
	a.s.st.config = newCfg
	a.s.mu.Unlock()
	// Like the server's config store, listeners only hear of real changes
	// (so a plugin saving its config from OnConfigurationChange does not
	// loop forever).
	if changed {
		_ = a.s.fireConfigurationChange(a.n, true)
	}
	return nil
}

// GetBundlePath returns the plugin's folder in PluginSettings.Directory.
func (a *API) GetBundlePath() (string, error) {
	a.s.mu.RLock()
	dir := *a.s.st.config.PluginSettings.Directory
	a.s.mu.RUnlock()
	return filepath.Abs(filepath.Join(dir, a.pluginID))
}

// fireConfigurationChange runs OnConfigurationChange on the active plugins
// of every node: all synchronously when origin is nil (a test changed the
// config), else synchronously on origin and, if othersAsync, asynchronously
// on the other nodes (as they would learn of it through the cluster).
func (s *Server) fireConfigurationChange(origin *Node, othersAsync bool) error {
	var errs []error
	for _, n := range s.Nodes() {
		if origin != nil && n != origin && othersAsync {
			n.goHook(plugin.OnConfigurationChangeID, func(h plugin.Hooks) {
				if err := h.OnConfigurationChange(); err != nil {
					n.logger.Error("Plugin OnConfigurationChange hook failed", mlog.Err(err))
				}
			})
			continue
		}
		n.runHook(plugin.OnConfigurationChangeID, func(h plugin.Hooks, m *model.Manifest) bool {
			if err := h.OnConfigurationChange(); err != nil {
				n.logger.Error("Plugin OnConfigurationChange hook failed", mlog.String("plugin_id", m.Id), mlog.Err(err))
				errs = append(errs, fmt.Errorf("%s on %s: OnConfigurationChange: %w", m.Id, n.id, err))
			}
			return true
		})
	}
	return errors.Join(errs...)
}

// desanitize restores, in newCfg, every string setting (and plugin setting)
// that holds model.FakeSetting from old, as the server does when a
// sanitized configuration is saved back.
func desanitize(old, newCfg *model.Config) {
	desanitizeValue(reflect.ValueOf(old).Elem(), reflect.ValueOf(newCfg).Elem())
	for id, settings := range newCfg.PluginSettings.Plugins {
		for k, v := range settings {
			if v == model.FakeSetting {
				if ov, ok := old.PluginSettings.Plugins[id][k]; ok {
					settings[k] = ov
				}
			}
		}
	}
}

func desanitizeValue(old, cur reflect.Value) {
	switch cur.Kind() {
	case reflect.Pointer:
		if cur.IsNil() || old.IsNil() {
			return
		}
		if cur.Elem().Kind() == reflect.String {
			if cur.Elem().String() == model.FakeSetting {
				cur.Set(reflect.ValueOf(model.NewPointer(old.Elem().String())))
			}
			return
		}
		desanitizeValue(old.Elem(), cur.Elem())
	case reflect.Struct:
		for i := range cur.NumField() {
			if cur.Type().Field(i).IsExported() {
				desanitizeValue(old.Field(i), cur.Field(i))
			}
		}
	case reflect.Slice:
		if cur.Type().Elem().Kind() == reflect.String && old.Len() == cur.Len() {
			for i := range cur.Len() {
				if cur.Index(i).String() == model.FakeSetting {
					cur.Index(i).SetString(old.Index(i).String())
				}
			}
		}
	}
}

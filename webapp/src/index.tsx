import manifest from './manifest';
import type {PluginClass, PluginRegistry, Store} from './types/mattermost-webapp';

export default class Plugin implements PluginClass {
    // Nothing to register yet. Linking channels to rooms is done with the
    // /xmppbridge, /matrixbridge and /slackbridge slash commands, which the
    // server part registers, and every setting lives in the System Console
    // schema of plugin.json. The web app bundle exists so that UI (such as a
    // bridged-message indicator or a link status view) can be added here
    // without changing the build.
    public initialize(_registry: PluginRegistry, _store: Store): void {
        // Intentionally empty.
    }
}

window.registerPlugin(manifest.id, new Plugin());

import MatrixRegistrationSetting from './components/matrix_registration';
import manifest from './manifest';
import type {PluginClass, PluginRegistry, Store} from './types/mattermost-webapp';

export default class Plugin implements PluginClass {
    // Linking channels to rooms is done with the /xmppbridge, /matrixbridge
    // and /slackbridge slash commands, which the server part registers, and
    // the settings live in the System Console schema of plugin.json; the web
    // app adds only what a schema cannot express.
    public initialize(registry: PluginRegistry, _store: Store): void {
        registry.registerAdminConsoleCustomSetting('MatrixRegistration', MatrixRegistrationSetting, {showTitle: true});
    }
}

window.registerPlugin(manifest.id, new Plugin());

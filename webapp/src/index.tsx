import BridgeStatusSetting from './components/bridge_status/bridge_status';
import ChannelBridgeIndicator from './components/channel_header/channel_indicator';
import MatrixRegistrationSetting from './components/matrix_registration';
import {makePostNetworkBadge} from './components/post_badge/post_network_badge';
import manifest from './manifest';
import type {PluginClass, PluginRegistry, Store} from './types/mattermost-webapp';

export default class Plugin implements PluginClass {
    // Linking channels to rooms is done with the /xmppbridge, /matrixbridge
    // and /slackbridge slash commands, which the server part registers, and
    // the settings live in the System Console schema of plugin.json; the web
    // app adds what a schema cannot express: the bridge's live status, the
    // Matrix registration download, the channel header's indicator and the
    // network badge on relayed posts.
    public initialize(registry: PluginRegistry, store: Store): void {
        registry.registerAdminConsoleCustomSetting('BridgeStatus', BridgeStatusSetting, {showTitle: false});
        registry.registerAdminConsoleCustomSetting('MatrixRegistration', MatrixRegistrationSetting, {showTitle: true});
        registry.registerChannelHeaderIcon(ChannelBridgeIndicator);
        registry.registerPostMessageAttachmentComponent(makePostNetworkBadge(store));
    }
}

window.registerPlugin(manifest.id, new Plugin());

import type {PluginClass, PluginRegistry, Store} from './types/mattermost-webapp';

// The bundle's entry registers itself with window.registerPlugin, as the
// Mattermost web app expects, and its initialize registers each component.
test('the plugin registers the admin view, the channel header indicator and the post badge', async () => {
    const registered: Array<[string, PluginClass]> = [];
    window.registerPlugin = (id, plugin) => registered.push([id, plugin]);
    await import('./index');
    expect(registered.map(([id]) => id)).toEqual(['com.mattermost.bridge']);

    const calls: string[] = [];
    const registry: PluginRegistry = {
        registerAdminConsoleCustomSetting: (key, component) => {
            calls.push(`setting ${key} ${typeof component}`);
        },
        registerChannelHeaderIcon: (component) => {
            calls.push(`header ${typeof component}`);
            return 'id1';
        },
        registerPostMessageAttachmentComponent: (component) => {
            calls.push(`post ${typeof component}`);
            return 'id2';
        },
    };
    const store: Store = {dispatch: (a) => a, getState: () => ({}), subscribe: () => () => undefined};
    await registered[0][1].initialize(registry, store);
    expect(calls).toEqual([
        'setting BridgeStatus function',
        'setting MatrixRegistration function',
        'header function',
        'post function',
    ]);
});

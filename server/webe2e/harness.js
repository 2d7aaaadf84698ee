// The part of the Mattermost web app's plugin contract the bridge's web
// app uses, for the browser test: window.registerPlugin hands the plugin a
// registry that records what it registers and a Redux-like store, then the
// registered components are rendered as the web app renders them.
// window.harnessConfig (from /harness/config.js) names the channels and
// holds the posts of the store.
(function () {
    'use strict';
    const cfg = window.harnessConfig;
    const e = React.createElement;
    const registered = {settings: [], headerIcons: [], postAttachments: []};
    window.harnessRegistered = registered;

    // The store: state.entities as the web app's Redux store has it, for
    // the parts the plugin reads.
    const state = {
        entities: {
            posts: {posts: Object.fromEntries(cfg.posts.map((p) => [p.id, p]))},
            channels: {currentChannelId: cfg.linkedChannel.id},
        },
    };
    const store = {
        getState: () => state,
        dispatch: (action) => action,
        subscribe: () => () => {},
    };

    const registry = {
        registerAdminConsoleCustomSetting(key, component, options) {
            registered.settings.push({key, component, options: options || {}});
        },
        registerChannelHeaderIcon(component) {
            registered.headerIcons.push(component);
            return 'header-' + registered.headerIcons.length;
        },
        registerPostMessageAttachmentComponent(component) {
            registered.postAttachments.push(component);
            return 'post-' + registered.postAttachments.length;
        },
    };
    // A registry method the page does not have is a plugin calling what
    // this test cannot show: say so instead of failing later unclearly.
    const strictRegistry = new Proxy(registry, {
        get(target, name) {
            if (!(name in target) && typeof name === 'string' && name.startsWith('register')) {
                throw new Error('the browser test page has no registry.' + name + ': add it to server/webe2e/harness.js');
            }
            return target[name];
        },
    });

    function render() {
        const settingProps = (s) => ({
            id: s.key, label: s.key, helpText: null, value: undefined, disabled: false,
            onChange: () => {}, setSaveNeeded: () => {}, registerSaveAction: () => {}, unRegisterSaveAction: () => {},
        });
        ReactDOM.createRoot(document.getElementById('admin-console')).render(
            e('div', null, registered.settings.map((s) => e('div', {key: s.key, className: 'admin-setting', 'data-key': s.key},
                s.options.showTitle ? e('label', null, s.key) : null,
                e(s.component, settingProps(s))))));
        for (const [slot, channel] of [['header-linked', cfg.linkedChannel], ['header-unlinked', cfg.unlinkedChannel]]) {
            ReactDOM.createRoot(document.getElementById(slot)).render(
                e('div', {className: 'channel-header__icons'}, registered.headerIcons.map((C, i) => e(C, {key: i, channel, channelMember: {}}))));
        }
        // Posts in the markup Mattermost gives them: a header with the
        // name column, then the body holding the attachment slot.
        ReactDOM.createRoot(document.getElementById('posts')).render(
            e('div', null, cfg.posts.map((p) => e('div', {key: p.id, className: 'post', 'data-post-id': p.id},
                e('div', {className: 'post__header'}, e('div', {className: 'col col__name'}, e('button', {className: 'user-popover'}, p.author))),
                e('div', {className: 'post__body'}, p.message, registered.postAttachments.map((C, i) => e(C, {key: i, postId: p.id, onHeightChange: () => {}})))))));
    }

    window.registerPlugin = function (id, plugin) {
        if (id !== cfg.pluginId) {
            throw new Error('registerPlugin called with ' + id + ', want ' + cfg.pluginId);
        }
        Promise.resolve(plugin.initialize(strictRegistry, store)).then(() => {
            render();
            window.harnessReady = true;
        }, (err) => {
            console.error('initialize failed:', err);
        });
    };
})();

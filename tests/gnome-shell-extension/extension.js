/* exported init */
// Test only (tests/gnome_shell.rs), GNOME Shell 43 style: unsafe mode lets the test drive
// the overview through org.gnome.Shell.Eval and take screenshots. Never install it on a
// real session: unsafe mode gives every program on the session bus the shell's powers.

class Extension {
    enable() {
        global.context.unsafe_mode = true;
    }

    disable() {
        global.context.unsafe_mode = false;
    }
}

function init() {
    return new Extension();
}

from tui.engine.host.main import main

main()

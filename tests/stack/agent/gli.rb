# A stand-in for the `gli` gem, which the CodeDeploy agent uses only to parse
# its command line (lib/codedeploy-agent.rb). It implements exactly the DSL
# that file calls: global `--flag value` options with defaults, commands with
# one action, a `pre` hook and `run(ARGV)` returning an exit status.
module GLI
  class Command
    attr_reader :action_block

    def action(&block)
      @action_block = block
    end
  end

  module App
    def program_desc(*) end

    def desc(*) end

    def arg_name(*) end

    def default_value(value)
      @gli_default = value
    end

    def flag(names)
      @gli_flags ||= {}
      Array(names).each { |n| @gli_flags[n.to_sym] = @gli_default }
      @gli_default = nil
    end

    def command(name)
      c = GLI::Command.new
      yield c
      (@gli_commands ||= {})[name.to_s] = c
    end

    def pre(&block)
      @gli_pre = block
    end

    def on_error(&block)
      @gli_on_error = block
    end

    def run(argv)
      global = (@gli_flags || {}).dup
      args = argv.dup
      while args.first && args.first.start_with?('--')
        key, value = args.shift.sub(/\A--/, '').split('=', 2)
        value = args.shift if value.nil?
        global[key.to_sym] = value
      end
      name = args.shift
      command = (@gli_commands || {})[name.to_s]
      if command.nil?
        $stderr.puts "error: unknown command #{name.inspect}"
        return 64
      end
      return 1 if @gli_pre && !@gli_pre.call(global, command, {}, args)
      command.action_block.call(global, {}, args)
      0
    rescue StandardError => e
      $stderr.puts "error: #{e.message}"
      1
    end
  end
end

# Unpacks and installs a bundle with the CodeDeploy agent's own code, for
# tests/bundle_instance.rs:
#
#   ruby tests/bundle_agent.rb AGENT_SRC BUNDLE zip|tgz|tar WORK_DIR
#
# 1. LinuxUtil.extract_zip / extract_tgz / extract_tar into
#    WORK_DIR/deployment-archive, as the agent's DownloadBundle step does
#    (`unzip -qo`, `tar -xpsf`, `tar -zxpsf`);
# 2. the Installer's install of the bundle's appspec.yml (the Install step:
#    mkdir and FileUtils.copy with :preserve), every `files` destination
#    moved under WORK_DIR so nothing outside it is touched.

agent_src, bundle, type, work = ARGV
abort 'usage: ruby bundle_agent.rb AGENT_SRC BUNDLE zip|tgz|tar WORK_DIR' if work.nil?
require_relative 'agent_env'
load_agent(agent_src)
require 'instance_agent/platform/linux_util'

InstanceAgent::Platform.util = InstanceAgent::LinuxUtil
Spec = InstanceAgent::Plugins::CodeDeployPlugin::ApplicationSpecification

archive = File.join(work, 'deployment-archive')
case type
when 'zip' then InstanceAgent::LinuxUtil.extract_zip(bundle, archive)
when 'tgz' then InstanceAgent::LinuxUtil.extract_tgz(bundle, archive)
else InstanceAgent::LinuxUtil.extract_tar(bundle, archive)
end

spec = Spec::ApplicationSpecification.parse(File.read(File.join(archive, 'appspec.yml')))
files = spec.files.map { |f| Spec::FileInfo.new(f.source, File.join(work, f.destination)) }
Plan = Struct.new(:files, :permissions, :file_exists_behavior)
instructions = File.join(work, 'instructions')
FileUtils.mkdir_p(instructions)
InstanceAgent::Plugins::CodeDeployPlugin::Installer.new(
  deployment_archive_dir: archive, deployment_instructions_dir: instructions, file_exists_behavior: 'DISALLOW'
).install('group', Plan.new(files, [], nil))

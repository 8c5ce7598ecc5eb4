import { isEc2Action, type AwsAccount, type Ec2Action } from './account.js';
import { QueryProtocolServer } from './query-server.js';

/** EC2 over the EC2 query protocol (flat lists, `<item>` elements), answered by the account's EC2 model. */
export class Ec2Server extends QueryProtocolServer {
  constructor(account: AwsAccount) {
    super({
      style: 'ec2Query',
      xmlns: 'http://ec2.amazonaws.com/doc/2016-11-15/',
      isAction: isEc2Action,
      call: (action, params) => account.ec2(action as Ec2Action, params, 'http'),
    });
  }
}
